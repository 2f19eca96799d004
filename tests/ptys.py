"""Real pty pairs standing in for serial cables, with a symlink as the port name.

A symlink lets a test "pull the cable" (close the master, remove the link)
and "plug it back" (new pty, link recreated under the same name), which is
what a USB-serial adapter looks like to the daemon when it is re-plugged.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path


class PtyCable:
    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self.slave = -1
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        os.set_blocking(self.master, False)
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        self.link.symlink_to(os.ttyname(self.slave))

    def unplug(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.master = self.slave = -1

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            view = view[n:]

    def read(self, timeout: float = 1.0) -> bytes:
        """Whatever the driver wrote towards the device."""
        end = time.monotonic() + timeout
        out = b""
        while time.monotonic() < end:
            try:
                out += os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                if out:
                    return out
                time.sleep(0.01)
        return out

    @property
    def port(self) -> str:
        return str(self.link)

    def close(self) -> None:
        self.unplug()


def wait_for(pred: Callable[[], bool], timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()
