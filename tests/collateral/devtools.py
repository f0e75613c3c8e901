"""Layout measurements in headless Chromium over the DevTools protocol, for checks that
`--dump-dom` cannot make (how wide a page lays out at a given viewport width).

Same isolation as `tests.browser`: only loopback resolves.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import subprocess
import tempfile
import time
from typing import Any

from websockets.sync.client import connect

from tests.browser import CHROMIUM_FLAGS, chromium

LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class Page:
    def __init__(self, socket) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    def send(self, method: str, session: str | None = None, **params: Any) -> dict:
        message_id = next(self.ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv(timeout=30))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})


def measure(
    url: str, width: int, height: int = 800, mobile: bool = False, screenshot: str = ""
) -> dict:
    """Load ``url`` at ``width`` CSS pixels and return the page's layout widths and text
    (and save a full-page PNG to ``screenshot`` if given, to look at by hand)."""
    # Chromium's helper processes can still be writing to the profile for a moment after the
    # browser exits; a leftover file must not fail the test.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert process.stderr is not None
            deadline = time.monotonic() + 30
            endpoint = None
            while endpoint is None and time.monotonic() < deadline:
                line = process.stderr.readline()
                if not line and process.poll() is not None:
                    raise RuntimeError("chromium exited before DevTools was up")
                if match := LISTENING.search(line):
                    endpoint = match.group(1)
            if endpoint is None:
                raise RuntimeError("chromium DevTools did not start")
            with connect(endpoint, max_size=None, open_timeout=30) as socket:
                page = Page(socket)
                target = page.send("Target.createTarget", url="about:blank")["targetId"]
                session = page.send("Target.attachToTarget", targetId=target, flatten=True)[
                    "sessionId"
                ]
                page.send(
                    "Emulation.setDeviceMetricsOverride",
                    session,
                    width=width,
                    height=height,
                    deviceScaleFactor=1,
                    mobile=mobile,
                )
                page.send("Page.navigate", session, url=url)
                expression = (
                    "document.readyState === 'complete' && document.body ? JSON.stringify({"
                    "scrollWidth: document.documentElement.scrollWidth,"
                    "clientWidth: document.documentElement.clientWidth,"
                    "innerWidth: window.innerWidth,"
                    "text: document.body.innerText}) : ''"
                )
                while time.monotonic() < deadline:
                    result = page.send(
                        "Runtime.evaluate", session, expression=expression, returnByValue=True
                    )["result"].get("value")
                    if result:
                        if screenshot:
                            shot = page.send(
                                "Page.captureScreenshot", session, captureBeyondViewport=True
                            )
                            with open(screenshot, "wb") as out:
                                out.write(base64.b64decode(shot["data"]))
                        return json.loads(result)
                    time.sleep(0.1)
                raise RuntimeError(f"{url} did not finish loading")
        finally:
            process.terminate()
            process.wait(timeout=10)
