"""A local control socket so technician commands can talk to the running daemon.

``edged status`` and ``edged simulate passage`` must work at the gate with
no network and no broker, so the daemon listens on a UNIX socket in its
state directory (mode 0660: the edged user and its group only). One JSON
object per line in each direction; a bad request gets an error reply and
never reaches the gate.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edged.logs import get_logger

log = get_logger("control")

Handler = Callable[[dict[str, Any]], dict[str, Any]]
MAX_REQUEST = 64 * 1024


class ControlServer:
    """Serves requests on a UNIX socket; each handler returns a JSON-able dict."""

    name = "control"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handlers: dict[str, Handler] = {}
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def on(self, cmd: str, handler: Handler) -> None:
        self.handlers[cmd] = handler

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        os.chmod(self.path, 0o660)
        sock.listen(8)
        sock.settimeout(0.5)
        self._sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        if self._sock:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def handle(self, raw: bytes) -> dict[str, Any]:
        """Pure dispatch of one request line: validation errors become error replies."""
        try:
            req = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return {"ok": False, "error": f"request is not JSON: {exc}"}
        if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
            return {"ok": False, "error": "request must be a JSON object with a string 'cmd'"}
        handler = self.handlers.get(req["cmd"])
        if handler is None:
            return {
                "ok": False,
                "error": f"unknown cmd {req['cmd']!r}; known: {', '.join(sorted(self.handlers))}",
            }
        try:
            return {"ok": True, **handler(req)}
        except (ValueError, KeyError, TypeError, TimeoutError) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("control_handler_failed", cmd=req["cmd"])
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def _client(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            buf = b""
            try:
                while b"\n" not in buf and len(buf) < MAX_REQUEST:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                reply = self.handle(buf.split(b"\n", 1)[0])
                conn.sendall(json.dumps(reply, ensure_ascii=False, default=str).encode() + b"\n")
            except OSError as exc:
                log.warning("control_client_error", error=str(exc))


def request(path: Path, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Client side: one request, one reply. Raises OSError when no daemon listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(payload, ensure_ascii=False).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf.decode("utf-8"))
