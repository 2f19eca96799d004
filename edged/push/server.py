"""The receiver's HTTP server: bounded in threads, time, size and who may talk to it.

Built on :mod:`http.server` (the standard library's HTTP/1.x parsing), with
what a box on a plant network needs around it:

- only configured camera addresses are served; any other connection is
  closed at accept, before a byte is read or a worker is taken;
- a fixed pool of workers, and at most ``per_camera`` requests open per
  address, so one misbehaving camera cannot starve the others;
- a whole request (headers and body) must arrive within
  ``request_timeout_s``: a reaper thread shuts the socket of a slower one,
  whatever it trickles;
- a body over ``max_body_mb`` is refused with 413 without being read.

Each connection carries one request (HTTP/1.0 style, ``Connection:
close``), so an idle keep-alive never holds a worker.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from drivers.camera.push import Reply
from edged.logs import get_logger

log = get_logger("push")

Handler = Callable[[str, str, str, bytes], Reply]  # (ip, path, content_type, body) -> reply


class _Request(http.server.BaseHTTPRequestHandler):
    server: ReceiverServer
    protocol_version = "HTTP/1.0"
    server_version = "edged"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # the base's name
        log.debug("http", client=self.client_address[0], line=format % args)

    def do_GET(self) -> None:  # http.server's naming
        self._send(Reply(405, b"POST pushes here\n"))

    def do_POST(self) -> None:
        srv = self.server
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._chunked(srv.max_body)
        else:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if length < 0:
                self._send(Reply(400, b"bad Content-Length\n"))
                return
            if length > srv.max_body:
                srv.count("refused_size")
                log.warning(
                    "push_too_large",
                    client=self.client_address[0],
                    bytes=length,
                    limit=srv.max_body,
                    hint="the camera sends more than receiver.max_body_mb: lower its image quality",
                )
                self._send(Reply(413, b"request too large\n"))
                return
            body = self.rfile.read(length)
            if len(body) < length:
                srv.count("cut_short")
                return  # the client went away (or was cut off by the reaper); nothing to answer
        if body is None:
            return
        srv.received(self.connection)  # the request is in: the deadline no longer applies
        ctype = self.headers.get("Content-Type", "")
        self._send(srv.handler(self.client_address[0], self.path, ctype, body))

    def _chunked(self, limit: int) -> bytes | None:
        out = bytearray()
        while True:
            line = self.rfile.readline(64)
            try:
                size = int(line.split(b";")[0].strip() or b"x", 16)
            except ValueError:
                self._send(Reply(400, b"bad chunk\n"))
                return None
            if size == 0:
                self.rfile.readline(64)
                return bytes(out)
            if len(out) + size > limit:
                self.server.count("refused_size")
                self._send(Reply(413, b"request too large\n"))
                return None
            chunk = self.rfile.read(size + 2)
            if len(chunk) < size + 2:
                self.server.count("cut_short")
                return None
            out += chunk[:size]

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError as exc:
            log.debug("push_reply_not_sent", client=self.client_address[0], error=str(exc))
        self.close_connection = True


class ReceiverServer(socketserver.TCPServer):
    """A TCP server whose requests run on a fixed pool, bounded per address and in time."""

    allow_reuse_address = True
    request_queue_size = 64
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: Handler,
        allowed: Callable[[str], bool],
        *,
        max_body: int,
        request_timeout: float,
        workers: int,
        per_address: int,
    ) -> None:
        self.handler = handler
        self.allowed = allowed
        self.max_body = max_body
        self.request_timeout = request_timeout
        self.per_address = per_address
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="push")
        self.slots = threading.BoundedSemaphore(workers)
        self.counters: dict[str, int] = {}
        self._open: dict[socket.socket, float] = {}  # socket -> deadline
        self._per_ip: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._refusal_logged: dict[str, float] = {}
        super().__init__(address, _Request)
        self._reaper = threading.Thread(target=self._reap, name="push-reaper", daemon=True)
        self._reaper.start()

    def count(self, what: str) -> None:
        with self._lock:
            self.counters[what] = self.counters.get(what, 0) + 1

    # -- admission, at accept, on the listening thread ----------------------------------
    def verify_request(self, request: Any, client_address: Any) -> bool:
        ip = client_address[0]
        if not self.allowed(ip):
            self.count("refused_address")
            now = time.monotonic()
            if now - self._refusal_logged.get(ip, -1e9) > 60:
                self._refusal_logged[ip] = now
                log.warning(
                    "push_refused_address",
                    client=ip,
                    hint="not a configured camera address: set the lane camera's address, or"
                    " check who is sending",
                )
            return False
        with self._lock:
            if self._per_ip.get(ip, 0) >= self.per_address:
                self.counters["refused_busy"] = self.counters.get("refused_busy", 0) + 1
                return False
            if not self.slots.acquire(blocking=False):
                self.counters["refused_busy"] = self.counters.get("refused_busy", 0) + 1
                return False
            self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
            self._open[request] = time.monotonic() + self.request_timeout
        return True

    def process_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.request_timeout)
        self.pool.submit(self._work, request, client_address)

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception as exc:  # a bad client must never end a worker
            log.debug("push_request_failed", client=client_address[0], error=repr(exc))
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._open.pop(request, None)
                ip = client_address[0]
                self._per_ip[ip] = self._per_ip.get(ip, 1) - 1
            self.slots.release()

    # -- the reaper: a whole request within request_timeout ------------------------------
    def _reap(self) -> None:
        while not self._stop.wait(0.25):
            now = time.monotonic()
            with self._lock:
                late = [s for s, deadline in self._open.items() if now > deadline]
                for s in late:
                    self._open.pop(s, None)
            for s in late:
                self.count("cut_slow")
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def received(self, request: Any) -> None:
        with self._lock:
            self._open.pop(request, None)

    def in_flight(self) -> int:
        with self._lock:
            return len(self._open)

    def close(self) -> None:
        self._stop.set()
        self.shutdown()
        self.server_close()
        with self._lock:
            socks = list(self._open)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.pool.shutdown(wait=True, cancel_futures=True)
