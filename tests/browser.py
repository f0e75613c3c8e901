"""Headless Chromium, with every host but loopback unreachable, for page tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Any name but the loopback test server fails to resolve: a page that needs the network
    # shows it by not rendering.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]


def chromium() -> str:
    """Path of the Chromium binary; fail loudly (never skip) if it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Chromium is not installed: run `make tools` (apt-get install chromium)")
    return path


def dump_dom(url: str, budget_ms: int = 8000) -> str:
    """Load `url`, let its scripts run, and return the resulting DOM."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    if result.returncode != 0:
        raise RuntimeError(f"chromium failed: {result.stderr[-2000:]}")
    return result.stdout


def load_recording_requests(url: str, budget_ms: int = 8000) -> tuple[str, list[str]]:
    """Load `url` like `dump_dom`; also return every URL the page made the browser request.

    Chromium's NetLog records each request as it starts, including ones to hosts that then
    fail to resolve, so a page that merely tries to fetch something remote shows it here.
    Chromium's own background requests (update checks, network time) have no initiating
    origin and are left out; the top-level navigation is too.
    """
    with tempfile.TemporaryDirectory() as work:
        netlog = f"{work}/netlog.json"
        result = subprocess.run(
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={work}/profile",
                f"--log-net-log={netlog}",
                f"--virtual-time-budget={budget_ms}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"chromium failed: {result.stderr[-2000:]}")
        with open(netlog, encoding="utf-8") as log:
            text = log.read()
    try:
        log_data = json.loads(text)
    except json.JSONDecodeError:  # a log cut short at exit lacks its closing brackets
        log_data = json.loads(text.rstrip().rstrip(",") + "]}")
    start_job = log_data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requested = {
        event["params"]["url"]
        for event in log_data["events"]
        if event["type"] == start_job
        and event.get("params", {}).get("initiator", "not an origin") != "not an origin"
    }
    return result.stdout, sorted(requested)
