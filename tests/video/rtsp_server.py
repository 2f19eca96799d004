"""A real RTSP server (GStreamer's rtsp-server) streaming an H.264 file, for tests and the bench.

    /usr/bin/python3 tests/video/rtsp_server.py FILE.mkv PORT

Runs with the system Python (python3-gi, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-good and -bad, which scripts/setup.sh --test
installs), serves ``rtsp://127.0.0.1:PORT/test`` in real time, the stream
copied from the file as a camera sends its own (no encoder runs here), and
prints ``READY`` once listening. Ends on SIGTERM.
"""

from __future__ import annotations

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    path, port = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( filesrc location={path} ! matroskademux ! h264parse config-interval=-1"
        " ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/test", factory)
    server.attach(None)
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    print("READY", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
