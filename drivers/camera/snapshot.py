"""``type = "snapshot"``: an IP camera's snapshot URL, asked for a picture only when needed.

A 1080p H.264 stream costs a Pi whether or not a vehicle is there: the
decoder runs on every frame (the frames refer to each other) and holds its
reference frames, 37 to 58 MB of the daemon's memory. Most gate cameras
also answer an HTTP GET with a JPEG of the moment (Hikvision
``/ISAPI/Streaming/channels/101/picture``, Dahua
``/cgi-bin/snapshot.cgi?channel=1``). This source asks for one only when a
passage waits for a frame, and once every ``check_every_s`` between
vehicles to know the camera is there: no decoder, no stream, nothing read
between vehicles, and each picture is taken after the request that asked
for it, so it is never older than the trigger.

Cameras ask for HTTP Digest authentication (RFC 7616 with MD5 and
``qop=auth``, as RFC 2617) or Basic. The challenge is kept and answered in
advance with a rising nonce count, so a snapshot costs one request, not
two; a stale nonce is answered once more with the new one. An answer
larger than ``max_bytes`` or not an image is refused with a log line that
says what came instead.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import os
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

import cv2
import numpy as np

from drivers.camera import CameraConfig, CameraError, safe_url
from drivers.config import Invalid, doc, driver
from drivers.log import get_logger

log = get_logger("camera")

#: OpenSSL's verify codes for a certificate that names another host or IP address.
_NAME_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,]*)\s*,?')


@dataclass(frozen=True)
class SnapshotConfig(CameraConfig):
    type: str = field(
        default="snapshot", metadata=doc("Frame source; the keys below depend on it", was="source")
    )
    url: str = field(
        default="",
        metadata=doc(
            "The camera's snapshot URL (http:// or https://), e.g. Hikvision"
            " http://CAMERA/ISAPI/Streaming/channels/101/picture, Dahua"
            " http://CAMERA/cgi-bin/snapshot.cgi?channel=1"
        ),
    )
    username: str = field(default="", metadata=doc("User the camera asks for (Digest or Basic)"))
    password: str = field(default="", metadata=doc("That user's password"))
    check_every_s: float = field(
        default=10.0,
        metadata=doc(
            "Between vehicles, one snapshot this often shows the camera is there"
            " (camera_lost when it is not)",
            min=1,
            max=600,
        ),
    )
    max_bytes: int = field(
        default=8_000_000,
        metadata=doc("A larger answer is refused (a 1080p JPEG is 0.2 to 1 MB)", min=10_000),
    )
    tls_verify: bool = field(
        default=True,
        metadata=doc(
            "Check an https camera's certificate; false encrypts without checking who"
            " answers (prefer tls_ca_file for a self-signed camera)"
        ),
    )
    tls_ca_file: str = field(
        default="",
        metadata=doc(
            "PEM file with the certificate (or its CA) an https camera must show, e.g. its"
            " self-signed one saved from the camera's web page; empty = the system's CAs"
        ),
    )

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Invalid(
                [("url", 'an http:// or https:// snapshot URL is needed for type = "snapshot"')]
            )
        if parts.username or parts.password:
            raise Invalid([("url", "put the user and password in username and password")])
        if self.tls_ca_file:
            if parts.scheme != "https":
                raise Invalid([("tls_ca_file", "only an https:// url has a certificate to check")])
            try:
                ssl.create_default_context(cafile=self.tls_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise Invalid(
                    [("tls_ca_file", f"cannot load {self.tls_ca_file} as PEM certificates: {exc}")]
                ) from None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``WWW-Authenticate`` as (scheme in lower case, its parameters).

    Quoted values may hold commas and escaped quotes; parameter names are
    case-insensitive (RFC 7235), so they come back in lower case.
    """
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    for m in _PARAM.finditer(rest):
        name, raw, quoted = m.group(1), m.group(2), m.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else raw.strip()
        params[name.lower()] = value
    return scheme.lower(), params


def digest_authorization(
    method: str,
    uri: str,
    username: str,
    password: str,
    challenge: dict[str, str],
    nc: int,
    cnonce: str,
) -> str:
    """The ``Authorization`` header answering a Digest ``challenge`` (MD5, qop auth or none).

    Pure: the same inputs give the same header, so it is checked against the
    RFCs' worked examples.
    """
    algorithm = challenge.get("algorithm", "MD5")
    if algorithm.upper() not in ("MD5", "MD5-SESS"):
        raise CameraError(f"camera asks for Digest {algorithm}, only MD5 is supported")

    def md5(text: str) -> str:
        return hashlib.md5(text.encode("utf-8")).hexdigest()  # Digest is MD5 by its RFC

    realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
    ha1 = md5(f"{username}:{realm}:{password}")
    if algorithm.upper() == "MD5-SESS":
        ha1 = md5(f"{ha1}:{nonce}:{cnonce}")
    ha2 = md5(f"{method}:{uri}")
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    fields = [
        f'username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
    ]
    if "auth" in qops:
        count = f"{nc:08x}"
        response = md5(f"{ha1}:{nonce}:{count}:{cnonce}:auth:{ha2}")
        fields += [f'response="{response}"', "qop=auth", f"nc={count}", f'cnonce="{cnonce}"']
    elif qops:
        raise CameraError(f"camera asks for Digest qop {qops}, only auth is supported")
    else:
        fields.append(f'response="{md5(f"{ha1}:{nonce}:{ha2}")}"')
    if "opaque" in challenge:
        fields.append(f'opaque="{challenge["opaque"]}"')
    if "algorithm" in challenge:
        fields.append(f"algorithm={algorithm}")
    return "Digest " + ", ".join(fields)


def fetch_certificate(url: str, timeout_s: float = 5.0) -> bytes:
    """The certificate an https camera shows (DER), taken without checking it.

    What a technician compares with the camera's own page before pinning it
    (``tls_ca_file``): trust on first use, with a person looking.
    """
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise CameraError("only an https:// snapshot URL has a certificate to take")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((parts.hostname, parts.port or 443), timeout_s) as raw,
            ctx.wrap_socket(raw, server_hostname=parts.hostname) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        raise CameraError(
            f"could not take the camera's certificate ({exc.__class__.__name__}: {exc}):"
            " check the camera's power, network and that it serves https on this port"
        ) from exc
    if not der:
        raise CameraError("the camera showed no certificate")
    return der


class SnapshotSource:
    """Takes a JPEG from the camera's snapshot URL when asked (``grab``), decodes it on
    ``retrieve``. ``on_request``: the frame thread asks only when a frame is wanted."""

    on_request = True

    def __init__(
        self,
        url: str,
        username: str = "",
        password: str = "",
        timeout_s: float = 2.0,
        max_bytes: int = 8_000_000,
        check_every_s: float = 10.0,
        tls_verify: bool = True,
        tls_ca_file: str = "",
    ) -> None:
        parts = urlsplit(url)
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.username = username
        self.password = password
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.check_every_s = check_every_s
        self.tls_verify = tls_verify
        self.tls_ca_file = tls_ca_file
        self.name = f"snapshot:{safe_url(url)}"
        self.requests = 0  # HTTP requests sent, the auth round trips included
        self._conn: http.client.HTTPConnection | None = None
        self._served_on_conn = False  # the open connection has answered before
        #: when the certificate of an https camera stops being valid (read on each new
        #: connection): a camera's own certificate expires, and then it is lost
        self.certificate_expires: datetime | None = None
        self._challenge: dict[str, str] | None = None
        self._basic = False
        self._nc = 0
        self._jpeg: bytes | None = None
        self._expired = False  # the request's deadline passed; its socket was shut

    # -- the FrameSource / GrabSource interface ------------------------------------------
    def open(self) -> None:
        """Connect and take one snapshot: a wrong URL or password shows at start."""
        self.close()
        self._jpeg = self._fetch()

    def read(self) -> np.ndarray | None:
        if not self.grab():
            return None
        return self.retrieve()

    def grab(self) -> bool:
        """Ask the camera for a picture of this moment and keep its JPEG undecoded."""
        self._jpeg = self._fetch()
        return True

    def retrieve(self) -> np.ndarray | None:
        """The last snapshot decoded; None (the camera counted lost) for a broken JPEG."""
        if self._jpeg is None:
            return None
        frame = cv2.imdecode(np.frombuffer(self._jpeg, np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            log.warning(
                "camera_bad_snapshot",
                source=self.name,
                bytes=len(self._jpeg),
                hint="the camera answered something that is not a picture; check the URL",
            )
        return frame

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._served_on_conn = False

    # -- HTTP ----------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.https:
                ctx = ssl.create_default_context(cafile=self.tls_ca_file or None)
                if not self.tls_verify:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout_s, context=ctx
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout_s
                )
        return self._conn

    def _read_certificate(self, conn: http.client.HTTPConnection) -> None:
        der = conn.sock.getpeercert(binary_form=True) if conn.sock is not None else None
        if der:
            from cryptography import x509

            self.certificate_expires = x509.load_der_x509_certificate(der).not_valid_after_utc

    def _authorization(self) -> str | None:
        if self._basic:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return f"Basic {token}"
        if self._challenge is None:
            return None
        self._nc += 1
        return digest_authorization(
            "GET",
            self.path,
            self.username,
            self.password,
            self._challenge,
            self._nc,
            os.urandom(8).hex(),
        )

    def _fetch(self) -> bytes:
        """One snapshot's bytes within ``timeout_s`` in all; CameraError saying what to
        check otherwise.

        The socket's own timeout bounds each wait for bytes, not the request: a
        camera (or anything on its address) sending its answer a byte at a time
        would hold the lane's frame thread for as long as it likes. A timer shuts
        the socket at the deadline, whatever the request is waiting for.
        """
        self._expired = False
        timer = threading.Timer(self.timeout_s, self._expire)
        timer.daemon = True
        timer.start()
        try:
            return self._request()
        except (OSError, http.client.HTTPException, CameraError) as exc:
            if self._expired:
                self.close()
                raise CameraError(
                    f"snapshot took over {self.timeout_s:g} s to arrive: check the camera's"
                    " load and network, or raise read_timeout_s"
                ) from exc
            raise
        finally:
            timer.cancel()

    def _expire(self) -> None:
        self._expired = True
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _request(self) -> bytes:
        attempt = 0
        fresh_retry = True
        while attempt < 3:  # as is; after a (new or stale) challenge; once more
            headers = {"Accept": "image/jpeg", "Connection": "keep-alive"}
            auth = self._authorization()
            if auth:
                headers["Authorization"] = auth
            reused = self._conn is not None and self._served_on_conn
            try:
                conn = self._connection()
                conn.request("GET", self.path, headers=headers)
                self.requests += 1
                resp = conn.getresponse()
                if self.https and not self._served_on_conn:
                    self._read_certificate(conn)
                status = resp.status
                if status == 401:
                    resp.read(64 * 1024)
                    if not resp.isclosed():  # a longer refusal: not worth reading
                        self.close()
                    if attempt == 2 or not self._challenged(resp.headers, auth):
                        raise CameraError(
                            "camera refused the user and password (HTTP 401): check"
                            " username and password"
                        )
                    attempt += 1
                    continue
                body = self._body(resp)
                self._served_on_conn = True
            except ssl.SSLCertVerificationError as exc:
                self.close()
                if exc.verify_code in _NAME_MISMATCH:
                    raise CameraError(
                        f"camera's https certificate names another address"
                        f" ({exc.verify_message}): have the camera make its certificate"
                        f" again for {self.host} (its HTTPS settings), save it anew"
                        " (edged probe camera --save-cert), or use the address it names"
                    ) from exc
                raise CameraError(
                    f"camera's https certificate not accepted ({exc.verify_message}): save"
                    " the certificate the camera shows to a file and name it in tls_ca_file"
                    " (edged probe camera --save-cert does both), or set tls_verify = false"
                ) from exc
            except ssl.SSLError as exc:
                self.close()
                raise CameraError(
                    f"https with the camera failed ({exc.reason or exc}): does it serve"
                    " https on this port? (http:// otherwise)"
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if reused and fresh_retry and not self._expired:
                    # cameras close a kept-alive connection left idle between vehicles:
                    # that is no lost camera; ask once more on a new connection
                    fresh_retry = False
                    continue
                raise CameraError(
                    f"snapshot request failed ({exc.__class__.__name__}: {exc}): check camera"
                    " power, network and the URL's host and port"
                ) from exc
            if resp.will_close:
                self.close()
            if status != 200:
                raise CameraError(
                    f"camera answered HTTP {status} to the snapshot URL: check its path"
                    " (Hikvision /ISAPI/Streaming/channels/101/picture, Dahua"
                    " /cgi-bin/snapshot.cgi?channel=1)"
                )
            kind = resp.headers.get("Content-Type", "")
            if not kind.lower().startswith("image/") and not body.startswith(b"\xff\xd8"):
                raise CameraError(
                    f"snapshot URL answered {kind or 'no content type'}, not a picture:"
                    " check its path"
                )
            return body
        raise CameraError("camera refused the user and password (HTTP 401)")

    def _challenged(self, headers: http.client.HTTPMessage, sent: str | None) -> bool:
        """Take the 401's challenge; False when answering it again cannot help."""
        for header in headers.get_all("WWW-Authenticate") or []:
            scheme, params = parse_challenge(header)
            if scheme == "digest":
                stale = params.get("stale", "").lower() == "true"
                if sent and sent.startswith("Digest") and not stale:
                    return False  # the same user and password were just refused
                self._challenge, self._nc, self._basic = params, 0, False
                return True
        for header in headers.get_all("WWW-Authenticate") or []:
            if parse_challenge(header)[0] == "basic" and not self._basic:
                self._basic, self._challenge = True, None
                return True
        return False

    def _body(self, resp: http.client.HTTPResponse) -> bytes:
        """The answer's body, never more than ``max_bytes`` read nor kept, and all of it:
        an answer cut short is an error, not a picture with its lower part missing."""
        length = resp.getheader("Content-Length")
        expected = int(length) if length is not None and length.isdigit() else None
        if expected is not None and expected > self.max_bytes:
            self.close()
            raise CameraError(
                f"snapshot of {expected} bytes refused (max_bytes = {self.max_bytes})"
            )
        chunks: list[bytes] = []
        size = 0
        while resp.length != 0:  # None: no Content-Length, read to the end
            chunk = resp.read1(64 * 1024)
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_bytes:
                self.close()
                raise CameraError(f"snapshot over {self.max_bytes} bytes refused (max_bytes)")
            chunks.append(chunk)
        if self._expired:
            raise CameraError("deadline")  # _fetch says what happened
        if expected is not None and size < expected:
            self.close()
            raise CameraError(
                f"snapshot cut off after {size} of {expected} bytes: check the camera's network"
            )
        resp.read()  # ends the response, so the connection serves the next snapshot
        return b"".join(chunks)


@driver(
    "camera", "snapshot", SnapshotConfig, "IP camera's snapshot URL, asked when a frame is needed"
)
def _build(cfg: SnapshotConfig) -> SnapshotSource:
    return SnapshotSource(
        cfg.url,
        cfg.username,
        cfg.password,
        # the camera is called lost after read_timeout_s; the request gives up then too
        timeout_s=cfg.read_timeout_s,
        max_bytes=cfg.max_bytes,
        check_every_s=cfg.check_every_s,
        tls_verify=cfg.tls_verify,
        tls_ca_file=cfg.tls_ca_file,
    )
