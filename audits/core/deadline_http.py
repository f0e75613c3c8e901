"""HTTP answers read against a deadline for the whole answer, on the standard library.

http.client's socket timeout restarts with every byte received, so a peer trickling its answer
could hold a reader for ever. Used by the chain reader (`audits.core.evm`) and the webhook
sender (`audits.webhooks`), both on `http.client`.
"""

from __future__ import annotations

import functools
import http.client
import io
import socket
import time
from typing import Any


class DeadlineReader(io.RawIOBase):
    """A socket's bytes, each receive limited to the time left before ``deadline``.

    http.client reads the status line, headers and body through this, so the deadline
    holds for the whole answer: a per-socket-op timeout restarts with every byte received.
    """

    def __init__(self, sock: socket.socket, deadline: float, holder: io.IOBase) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline
        # The socket's own file object: holding it open keeps the descriptor alive after
        # http.client hands the socket to the response (Connection: close).
        self._holder = holder

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._holder.close()
        super().close()


class DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(DeadlineReader(sock, deadline, self.fp))


def deadline_response_class(deadline: float) -> Any:
    """A `response_class` for an `http.client` connection whose answers end at `deadline`
    (a `time.monotonic()` instant)."""
    return functools.partial(DeadlineResponse, deadline=deadline)
