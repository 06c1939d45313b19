"""A loopback HTTP server for tests: files and scripted responses on 127.0.0.1, every request recorded.

Routes answer with ``Reply`` scripts: status, headers, body, a delay before answering, a slow
drip (forever, if asked), gzip, redirects, or a connection reset instead of any answer. A route
given several replies plays them in order and then repeats the last, so "503 then 200" is
``server.route("/x", Reply(503), Reply(200))``. ``server.outage(reply)`` makes every path answer
one reply (a host down, or overloaded) until ``server.outage(None)``. Every request is recorded
with its arrival time (``time.monotonic()``) and the reply it got, so tests measure rates, waits
and retries at the server, where they matter. Unrouted paths answer 404.

Tests use the ``http_server`` fixture (``tests/conftest.py``); anywhere else,
``with LoopbackServer() as server:``.

It must never listen anywhere but the loopback address it is given, and it stops every drip
when it is stopped, so no test leaves a thread behind.
"""

from __future__ import annotations

import gzip
import mimetypes
import socket
import struct
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType


@dataclass(frozen=True)
class Drip:
    """A body sent ``chunk`` by ``chunk`` with ``interval_s`` between; ``count=None`` never ends."""

    chunk: bytes = b"x"
    interval_s: float = 0.1
    count: int | None = None


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    # Seconds to wait before sending the status line.
    delay_s: float = 0.0
    # Sent instead of ``body``; without a count it is close-delimited and endless.
    drip: Drip | None = None
    # Compress ``body`` with gzip and say so in Content-Encoding.
    gzip: bool = False
    # Answer nothing: close the connection with a TCP reset (the client sees "connection reset by peer").
    reset: bool = False


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status=status, headers={"Location": location})


def html(text: str, charset_header: str | None = "utf-8", encoding: str = "utf-8", status: int = 200) -> Reply:
    """An HTML page encoded in ``encoding`` whose Content-Type header declares ``charset_header``."""
    content_type = "text/html" + (f"; charset={charset_header}" if charset_header else "")
    return Reply(status=status, headers={"Content-Type": content_type}, body=text.encode(encoding))


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    # time.monotonic() when the request line had been read.
    at: float
    client: tuple[str, int]
    # Filled in as the reply goes out: how much of the body the client let us send.
    bytes_sent: int = 0
    # The reply the request got (its route's, the outage's, or the 404 of an unrouted path).
    reply: Reply | None = None


class LoopbackServer:
    """A threaded HTTP/1.1 (keep-alive) server on ``host``, port chosen by the kernel."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._routes: dict[str, list[Reply]] = {}
        self._requests: list[RecordedRequest] = []
        self._outage: Reply | None = None
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _QuietServer((host, 0), _handler_for(self))
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        # A short poll interval keeps stop() (and so every test's teardown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-http", daemon=True
        )

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def route(self, path: str, *replies: Reply) -> str:
        """Answers ``path`` (path and query) with ``replies`` in turn, then the last forever; returns its URL."""
        if not replies:
            raise ValueError(f"route {path} needs at least one reply")
        with self._lock:
            self._routes[path] = list(replies)
        return self.url(path)

    def serve_file(self, path: str, file: Path, content_type: str | None = None, gzip_body: bool = False) -> str:
        guessed = content_type or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return self.route(path, Reply(headers={"Content-Type": guessed}, body=file.read_bytes(), gzip=gzip_body))

    def outage(self, reply: Reply | None) -> None:
        """Every path answers ``reply`` (routes keep their place in their scripts) until called with None."""
        with self._lock:
            self._outage = reply

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            replies = self._routes.get(request.path)
            if self._outage is not None:
                request.reply = self._outage
            elif replies is None:
                request.reply = Reply(status=404, headers={"Content-Type": "text/plain"}, body=b"not routed")
            else:
                request.reply = replies.pop(0) if len(replies) > 1 else replies[0]
            return request.reply


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # Clients under test hang up mid-response on purpose (caps, deadlines); that is no error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def _handler_for(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes; with Nagle's algorithm the body waits for
        # the client's delayed ACK (~20-40 ms a response), which real servers do not make clients wait.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            request = RecordedRequest(
                method=self.command,
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                at=time.monotonic(),
                client=self.client_address[:2],
            )
            reply = server._next_reply(request)
            if reply.delay_s and server.stopping.wait(reply.delay_s):
                return
            if reply.reset:
                # Linger 0: close() sends RST instead of FIN, as a crashed or overloaded server does.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            try:
                self._send(reply, request)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client hung up, as clients under test should

        do_HEAD = do_GET

        def _send(self, reply: Reply, request: RecordedRequest) -> None:
            body = gzip.compress(reply.body) if reply.gzip else reply.body
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.gzip:
                self.send_header("Content-Encoding", "gzip")
            if reply.drip is None:
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                    request.bytes_sent = len(body)
                return
            drip = reply.drip
            if drip.count is None:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(len(drip.chunk) * drip.count))
            self.end_headers()
            sent = 0
            while drip.count is None or sent < drip.count:
                if server.stopping.is_set():
                    return
                self.wfile.write(drip.chunk)
                self.wfile.flush()
                request.bytes_sent += len(drip.chunk)
                sent += 1
                if drip.interval_s and server.stopping.wait(drip.interval_s):
                    return

        def log_message(self, format: str, *args: object) -> None:
            pass  # tests read server.requests, not stderr

    return Handler
