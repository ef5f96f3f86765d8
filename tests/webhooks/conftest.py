"""A real webhook receiver: an HTTP server on 127.0.0.1 that verifies each message with the
published `standardwebhooks` library, as a partner would."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int
    verified: bool

    @property
    def signatures(self) -> list[str]:
        return self.headers["webhook-signature"].split(" ")


@dataclass
class Receiver:
    url: str
    secret: str | None = None  # the partner's copy; None: verify nothing
    # Status codes to answer, in order; once used up, `then` for every request.
    statuses: list[int] = field(default_factory=list)
    then: int = 200
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, received: Received, secret: str | None = None):
        """The payload if `secret` (default: the receiver's) verifies it, else raises."""
        return Webhook(secret or self.secret).verify(received.body, received.headers)

    @property
    def delivered(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.answered < 300 and r.verified]


@pytest.fixture
def receiver():
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {key.lower(): value for key, value in self.headers.items()}
            verified = False
            if state.secret:
                try:
                    Webhook(state.secret).verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
            with state.lock:
                status = state.statuses.pop(0) if state.statuses else state.then
                if state.secret and not verified:
                    status = 400
                state.requests.append(Received(headers, body, status, verified))
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/loyalty"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
