"""The snapshot-URL camera against a camera's HTTP wire format, and against hostile servers.

The well-behaved camera is :class:`drivers.simulators.SnapshotCameraSimulator`
(Digest with rotating nonces, Basic, or none); the hostile ones are raw
sockets writing exactly the bytes under test.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from drivers.camera import CameraError, safe_url
from drivers.camera.opencv import OpenCVSource
from drivers.camera.snapshot import (
    SnapshotConfig,
    SnapshotSource,
    digest_authorization,
    fetch_certificate,
    parse_challenge,
)
from drivers.config import Invalid
from drivers.simulators import SnapshotCameraSimulator, self_signed_certificate


def test_digest_answers_match_the_rfc_examples() -> None:
    rfc2617 = digest_authorization(
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle Of Life",
        {
            "realm": "testrealm@host.com",
            "qop": "auth,auth-int",
            "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "opaque": "5ccc069c403ebaf9f0171e9517f40e41",
        },
        1,
        "0a4f113b",
    )
    assert 'response="6629fae49393a05397450978507c4ef1"' in rfc2617
    assert "nc=00000001" in rfc2617 and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in rfc2617
    rfc7616 = digest_authorization(
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle of Life",
        {
            "realm": "http-auth@example.org",
            "qop": "auth, auth-int",
            "algorithm": "MD5",
            "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
        },
        1,
        "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert 'response="8ca523f5e9506fed4657c9700eebdbec"' in rfc7616
    with pytest.raises(CameraError, match="SHA-512"):
        digest_authorization("GET", "/", "u", "p", {"algorithm": "SHA-512-256"}, 1, "c")


def test_challenge_parameters_keep_quoted_commas_and_quotes() -> None:
    scheme, params = parse_challenge(
        'Digest realm="IP Camera, gate 1", qop="auth", nonce="a\\"b", STALE=TRUE'
    )
    assert scheme == "digest"
    assert params == {"realm": "IP Camera, gate 1", "qop": "auth", "nonce": 'a"b', "stale": "TRUE"}


@pytest.fixture
def camera() -> Iterator[SnapshotCameraSimulator]:
    sim = SnapshotCameraSimulator(size=(320, 180)).start()
    sim.show(np.full((180, 320, 3), 200, np.uint8))
    yield sim
    sim.stop()


def test_digest_camera_costs_one_request_a_snapshot(camera: SnapshotCameraSimulator) -> None:
    src = SnapshotSource(camera.url, "admin", "cam-pass")
    src.open()
    for _ in range(10):
        assert src.grab()
        frame = src.retrieve()
        assert frame is not None and frame.shape == (180, 320, 3)
        assert abs(int(frame[90, 160, 0]) - 200) < 4
    src.close()
    # the first request only fetched the challenge; every later one carried its answer
    assert src.requests == len(camera.requests) == 12 and camera.served == 11


def test_a_connection_the_camera_closed_while_idle_is_opened_again(
    camera: SnapshotCameraSimulator,
) -> None:
    src = SnapshotSource(camera.url, "admin", "cam-pass")
    src.open()
    assert src.grab() and src.retrieve() is not None
    camera.drop_connections()  # the camera ends the kept-alive connection between vehicles
    time.sleep(0.1)
    assert src.grab() and src.retrieve() is not None  # no camera_lost for that
    camera.stop()
    with pytest.raises(CameraError, match="power, network"):
        src.grab()  # a camera really gone is still an error


def test_a_rotated_nonce_is_answered_again() -> None:
    sim = SnapshotCameraSimulator(size=(160, 90), nonce_uses=2).start()
    try:
        src = SnapshotSource(sim.url, "admin", "cam-pass")
        src.open()
        for _ in range(5):
            assert src.grab() and src.retrieve() is not None
        assert sim.served == 6 and src.requests > 7  # stale nonces were answered anew
    finally:
        sim.stop()


def test_basic_authentication() -> None:
    sim = SnapshotCameraSimulator(size=(160, 90), auth="basic").start()
    try:
        src = SnapshotSource(sim.url, "admin", "cam-pass")
        src.open()
        assert src.grab() and src.retrieve() is not None
        with pytest.raises(CameraError, match="username and password"):
            SnapshotSource(sim.url, "admin", "wrong").open()
    finally:
        sim.stop()


def test_wrong_password_and_wrong_path_say_what_to_check(
    camera: SnapshotCameraSimulator,
) -> None:
    with pytest.raises(CameraError, match=r"HTTP 401.*username and password"):
        SnapshotSource(camera.url, "admin", "wrong").open()
    wrong_path = camera.url.replace("/picture", "/pictures")
    with pytest.raises(CameraError, match=r"HTTP 404.*path.*ISAPI"):
        SnapshotSource(wrong_path, "admin", "cam-pass").open()
    port = camera.port
    camera.stop()
    with pytest.raises(CameraError, match="power, network"):
        SnapshotSource(f"http://127.0.0.1:{port}/x", timeout_s=1.0).open()


@contextmanager
def raw_server(
    answer: bytes,
    trickle_s: float = 0.0,
    endless: bool = False,
    trickle_head: bool = False,
) -> Iterator[str]:
    """One HTTP 'camera' writing ``answer`` to each request: the bytes under test.

    ``trickle_s``: the body a byte at a time (the head too with ``trickle_head``).
    The connection is closed after the answer, whatever the answer promised."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.recv(4096)
                try:
                    if trickle_s:  # the head at once, then the body a byte at a time
                        head, _, body = answer.partition(b"\r\n\r\n")
                        if trickle_head:
                            body = answer
                        else:
                            conn.sendall(head + b"\r\n\r\n")
                        for b in body:
                            conn.sendall(bytes([b]))
                            if stop.wait(trickle_s):
                                break
                    else:
                        conn.sendall(answer)
                    while endless and not stop.is_set():
                        conn.sendall(b"\xff" * 65536)
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}/snap.jpg"
    finally:
        stop.set()
        t.join(2)
        srv.close()


def test_hostile_cameras_cost_bounded_memory_and_time() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n"
    with (
        raw_server(head + b"Content-Length: 900000000\r\n\r\n\xff\xd8") as url,
        pytest.raises(CameraError, match="900000000 bytes refused"),
    ):
        SnapshotSource(url, max_bytes=1_000_000).open()
    with raw_server(head + b"Connection: close\r\n\r\n\xff\xd8", endless=True) as url:
        t = time.monotonic()
        with pytest.raises(CameraError, match="over 1000000 bytes refused"):
            SnapshotSource(url, max_bytes=1_000_000).open()
        assert time.monotonic() - t < 5
    with raw_server(head + b"Content-Length: 500\r\n\r\n" + b"\xff" * 500, trickle_s=0.05) as url:
        t = time.monotonic()
        with pytest.raises(CameraError, match=r"took over 0\.5 s"):
            SnapshotSource(url, timeout_s=0.5).open()
        assert time.monotonic() - t < 3
    # the head a byte every 50 ms: each byte comes well within the socket's timeout,
    # the whole answer would take minutes; the request ends at its deadline
    slow_head = head + b"X-Pad: " + b"a" * 4000 + b"\r\nContent-Length: 2\r\n\r\n\xff\xd8"
    with raw_server(slow_head, trickle_s=0.05, trickle_head=True) as url:
        t = time.monotonic()
        with pytest.raises(CameraError, match=r"took over 0\.5 s.*read_timeout_s"):
            SnapshotSource(url, timeout_s=0.5).open()
        assert time.monotonic() - t < 2
    with (
        raw_server(head + b"Content-Length: 500\r\n\r\n\xff\xd8" + b"\x00" * 98) as url,
        pytest.raises(CameraError, match="cut off after 100 of 500 bytes"),
    ):
        SnapshotSource(url).open()
    page = b"<html>login</html>"
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s"
    with (
        raw_server(answer % (len(page), page)) as url,
        pytest.raises(CameraError, match="text/html, not a picture"),
    ):
        SnapshotSource(url).open()
    broken = b"\xff\xd8not a jpeg at all"
    with raw_server(head + b"Content-Length: %d\r\n\r\n%s" % (len(broken), broken)) as url:
        src = SnapshotSource(url)
        src.open()  # the bytes came; the picture is made only when a passage asks
        assert src.retrieve() is None


def test_config_wants_an_http_url_and_keeps_credentials_out_of_it() -> None:
    with pytest.raises(Invalid) as err:
        SnapshotConfig(url="rtsp://10.0.0.5/stream")
    assert err.value.problems[0][0] == "url"
    with pytest.raises(Invalid, match="username and password"):
        SnapshotConfig(url="http://admin:secret@10.0.0.5/ISAPI/Streaming/channels/101/picture")
    cfg = SnapshotConfig(url="https://10.0.0.5/cgi-bin/snapshot.cgi?channel=1", password="s")
    src = SnapshotSource(cfg.url, password=cfg.password)
    assert src.path == "/cgi-bin/snapshot.cgi?channel=1" and src.https
    assert safe_url("http://u:p@cam/x") == "http://***@cam/x"
    rtsp = OpenCVSource("rtsp://admin:hunter2@10.0.0.5:554/Streaming/Channels/101")
    assert rtsp.name == "opencv:rtsp://***@10.0.0.5:554/Streaming/Channels/101"
    assert "s" not in src.name.replace("snapshot", "").replace("https", "")


def test_https_camera_is_checked_against_the_certificate_it_was_given(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path, "camera")
    other, _ = self_signed_certificate(tmp_path, "another-camera")
    sim = SnapshotCameraSimulator(size=(160, 90), tls=(cert, key)).start()
    try:
        assert sim.url.startswith("https://")
        # the system's CAs never signed a camera's own certificate: say how to trust it
        with pytest.raises(CameraError, match=r"certificate not accepted.*tls_ca_file"):
            SnapshotSource(sim.url, "admin", "cam-pass").open()
        src = SnapshotSource(sim.url, "admin", "cam-pass", tls_ca_file=cert)
        src.open()
        for _ in range(3):  # Digest over https, on one kept-alive TLS connection
            assert src.grab() and src.retrieve() is not None
        # another device answering on the camera's address is refused
        with pytest.raises(CameraError, match="certificate not accepted"):
            SnapshotSource(sim.url, "admin", "cam-pass", tls_ca_file=other).open()
        # the pinned certificate names 127.0.0.1, the URL another name for the camera
        renamed = sim.url.replace("127.0.0.1", "localhost")
        with pytest.raises(CameraError, match=r"names another address.*for localhost"):
            SnapshotSource(renamed, "admin", "cam-pass", tls_ca_file=cert).open()
        unchecked = SnapshotSource(sim.url, "admin", "cam-pass", tls_verify=False)
        unchecked.open()
        assert unchecked.retrieve() is not None
    finally:
        sim.stop()
    plain = SnapshotCameraSimulator(size=(160, 90)).start()
    try:  # https:// to a camera that serves http on that port
        with pytest.raises(CameraError, match=r"https.*failed.*http://"):
            SnapshotSource(plain.url.replace("http://", "https://"), tls_verify=False).open()
        with pytest.raises(CameraError, match="could not take the camera's certificate"):
            fetch_certificate(plain.url.replace("http://", "https://"), 2.0)
        with pytest.raises(CameraError, match="only an https://"):
            fetch_certificate(plain.url)
    finally:
        plain.stop()


def test_tls_ca_file_is_checked_at_config_load(tmp_path: Path) -> None:
    cert, _ = self_signed_certificate(tmp_path, "camera")
    url = "https://10.0.0.5/ISAPI/Streaming/channels/101/picture"
    assert SnapshotConfig(url=url, tls_ca_file=cert).tls_ca_file == cert
    with pytest.raises(Invalid) as err:
        SnapshotConfig(url=url.replace("https", "http"), tls_ca_file=cert)
    assert err.value.problems[0][0] == "tls_ca_file"
    for bad in (tmp_path / "missing.pem", tmp_path / "camera.key"):
        with pytest.raises(Invalid, match="cannot load") as err:
            SnapshotConfig(url=url, tls_ca_file=str(bad))
        assert err.value.problems[0][0] == "tls_ca_file"
