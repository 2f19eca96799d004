"""``edged probe camera``: frames, their size and rate, and the plates in view, for aiming."""

from __future__ import annotations

import threading
import time
from typing import Any, TextIO

from edged.probe.output import ProbeOutput


def save_camera_certificate(cc: Any, path: str, timeout: float, v: ProbeOutput) -> Any:
    """Take and save the certificate of an https snapshot camera; the camera's config
    with it pinned (``tls_ca_file``), or None after a FAIL verdict."""
    import dataclasses
    import hashlib
    import ssl

    from cryptography import x509

    from drivers.camera import CameraError
    from drivers.camera.snapshot import fetch_certificate

    if cc.type != "snapshot" or not str(getattr(cc, "url", "")).startswith("https://"):
        v.failed(
            f"--save-cert: the camera is type {cc.type}, not an https:// snapshot URL",
            "only an https snapshot camera shows a certificate",
        )
        return None
    try:
        der = fetch_certificate(cc.url, timeout)
    except CameraError as exc:
        v.failed(str(exc))
        return None
    try:
        with open(path, "w", encoding="ascii") as f:
            f.write(ssl.DER_cert_to_PEM_cert(der))
    except OSError as exc:
        v.failed(f"--save-cert: cannot write {path}: {exc}", "check the folder exists")
        return None
    cert = x509.load_der_x509_certificate(der)
    digest = hashlib.sha256(der).hexdigest().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    v.line(f"certificate saved to {path}")
    v.line(f"  subject {cert.subject.rfc4514_string()}, issuer {cert.issuer.rfc4514_string()}")
    v.line(f"  valid {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}")
    v.line(f"  SHA-256 fingerprint {fingerprint}")
    v.line(
        "  compare the fingerprint with the one the camera's own web page shows (its HTTPS"
        f' settings); if they agree, set tls_ca_file = "{path}" for this camera'
    )
    return dataclasses.replace(cc, tls_ca_file=path, tls_verify=True)


def probe_camera(
    cc: Any,
    out: TextIO,
    *,
    frames: int = 20,
    timeout: float | None = None,
    open_timeout: float = 20.0,
    read: bool = False,
    lpr: Any = None,
    save: str | None = None,
    save_cert: str | None = None,
) -> int:
    """Open the camera, take ``frames`` frames, report size and measured fps.

    ``save_cert``: first take the certificate an https snapshot camera shows,
    save it there (PEM), print what to compare it with, and probe with it pinned.
    """
    from drivers import config as driver_config
    from drivers.camera import can_grab
    from drivers.camera.resilient import ResilientSource

    v = ProbeOutput(out)
    if cc.type in ("none", "mock"):
        what = "no camera" if cc.type == "none" else "frames handed in by a program, no camera"
        return v.failed(
            f"camera type is {cc.type} ({what})",
            "set the lane's camera type to opencv, picamera2 or folder to probe a camera",
        )
    timeout = timeout or cc.read_timeout_s
    if save_cert:
        pinned = save_camera_certificate(cc, save_cert, timeout, v)
        if pinned is None:
            return 1
        cc = pinned
    src = driver_config.build(cc)
    cam = ResilientSource(src, read_timeout=timeout)
    v.line(f"opening {src.name} (frame timeout {timeout:g} s)")
    if getattr(src, "https", False):
        v.line(
            "https: the camera's certificate is "
            + (
                f"checked against {src.tls_ca_file}"
                if src.tls_ca_file and src.tls_verify
                else "checked against the system's CAs"
                if src.tls_verify
                else "not checked (tls_verify = false): anything on its address is believed"
            )
        )
    opener = threading.Thread(target=cam.open, name="probe-camera-open", daemon=True)
    opener.start()
    opener.join(open_timeout)
    if opener.is_alive():
        return v.failed(
            f"{src.name} did not open within {open_timeout:g} s",
            "check the camera's power and network, the device path or rtsp:// URL,"
            " user and password",
        )
    if cam.state != "ok":
        reason = cam.last_error.removeprefix("open failed: ") or "unknown error"
        hint = (
            ""
            if any(
                advice in reason for advice in ("check", "install", "tls_ca_file", "--save-cert")
            )
            else "check the camera's type, device (or folder) in the config"
        )
        return v.failed(f"cannot open {src.name}: {reason}", hint)
    times: list[float] = []
    frame = None
    try:
        for i in range(frames):
            got = cam.read()
            if got is None:
                return v.failed(
                    f"frame {i + 1} of {frames} from {src.name} did not arrive"
                    f" ({cam.last_error or 'no frame'})",
                    "check the camera's power, cable or network; for RTSP try the sub-stream"
                    " or a lower bit rate",
                )
            times.append(time.monotonic())
            frame = got
        if cc.decode == "on_demand" and getattr(src, "on_request", False):
            wall = (times[-1] - times[0]) / max(1, len(times) - 1) * 1000
            v.line(
                f"decode on_request: a snapshot {wall:.0f} ms from asking to picture;"
                " none taken between vehicles but one every"
                f" {getattr(src, 'check_every_s', 0):g} s to check the camera"
            )
        elif cc.decode == "on_demand" and can_grab(src):
            cost = grab_cost(cam, frames)
            if cost is None:
                return v.failed(
                    f"{src.name} gave pictures but no frame to grab ({cam.last_error})",
                    'set decode = "every_frame" for this camera and tell the maintainers',
                )
            v.line(
                f"decode on_demand: {cost[0]:.1f} frames a second taken, {cost[1]:.1f} ms of CPU"
                f" each between vehicles; making one a picture {cost[2]:.1f} ms more"
            )
    finally:
        cam.close()
    assert frame is not None
    h, w = frame.shape[:2]
    span = times[-1] - times[0]
    fps = (len(times) - 1) / span if len(times) > 1 and span > 0 else 0.0
    v.line(f"{len(times)} frames {w}x{h}, {fps:.1f} fps measured (configured {cc.fps:g})")
    asked = (getattr(cc, "width", None), getattr(cc, "height", None))
    if None not in asked and (w, h) != asked:
        v.line(f"note: the camera delivers {w}x{h}; the config asks {asked[0]}x{asked[1]}")
    if len(times) > 1 and fps < cc.fps * 0.5:
        v.line(
            f"note: {fps:.1f} fps is less than half of camera.fps = {cc.fps:g};"
            " check the camera's frame rate and the network"
        )
    summary = f"{src.name}: {len(times)} frames {w}x{h} at {fps:.1f} fps"
    if save:
        import cv2

        if not cv2.imwrite(save, frame):
            return v.failed(
                f"{summary}, but the frame could not be saved to {save}",
                "check that the directory exists and the name ends in .jpg or .png",
            )
        v.line(f"saved the last frame to {save}")
    if read:
        from edged.lpr import ModelError, PlateRecognizer

        try:
            recognizer = PlateRecognizer(lpr)
        except ModelError as exc:
            return v.failed(f"{summary}, but the plate models did not load", str(exc))
        plates = recognizer.read(frame)
        for p in plates:
            note = "" if p.valid_syntax else f" (not a valid plate: {p.syntax_error})"
            width = plate_width(p.corners)
            v.line(
                f"plate {p.text} confidence {p.confidence:.2f} colour {p.colour} "
                f"width {width:.0f} px{note}"
            )
            if width < SMALL_PLATE_PX:
                v.line(
                    f"  plate is small: under {SMALL_PLATE_PX} px wide the recogniser finds it "
                    "only in its second pass, and under about 110 px maybe not at all; zoom "
                    "the lens in or set [lpr] roi around the lane (docs/LPR.md)"
                )
        if plates:
            summary += "; plates read: " + ", ".join(p.text for p in plates)
        else:
            v.line("no plate found in the last frame: put a plate in view to check aim and focus")
            summary += "; no plate in view"
    return v.passed(summary)


def grab_cost(cam: Any, frames: int) -> tuple[float, float, float] | None:
    """Frames a second taken by ``frames`` grabs, CPU ms a grab, CPU ms a picture; None: failed.

    CPU time is the process's (a stream's decoding threads included), so the
    figures are what the frame thread costs between vehicles and per frame a
    passage asks for.
    """
    t0, c0 = time.monotonic(), time.process_time()
    for _ in range(frames):
        if not cam.grab():
            return None
    t1, c1 = time.monotonic(), time.process_time()
    if cam.retrieve() is None:
        return None
    c2 = time.process_time()
    rate = frames / (t1 - t0) if t1 > t0 else 0.0
    return rate, (c1 - c0) / frames * 1000, (c2 - c1) * 1000


#: Plate width (frame pixels) from which aiming is comfortable: narrower plates are
#: found by the recogniser's second pass only, and under ~110 px not reliably.
SMALL_PLATE_PX = 120


def plate_width(corners: tuple[tuple[float, float], ...]) -> float:
    """Mean length of a plate's top and bottom edges (corners TL, TR, BR, BL)."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = corners
    return (((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 + ((x2 - x3) ** 2 + (y2 - y3) ** 2) ** 0.5) / 2
