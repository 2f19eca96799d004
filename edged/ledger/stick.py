"""The right stick: which USB sticks get the automatic export, and how they are mounted.

Any stick used to take the export, so the next stick (the inspector's) found
a gap. Now the automatic export writes only to a stick prepared for it:

- ``marker``: the stick holds ``EDGED-EXPORT.json``, written by
  ``edged export prepare-stick`` for this site (or any site);
- ``label``: its volume label is ``ledger.usb_label``;
- ``marker_or_label``: either; ``any``: every stick, as before.

Any other stick is logged (``usb_stick_ignored``) and left untouched. The
marker is the only thing ever read from a stick: opened without following
links, at most 4 KiB, parsed as JSON, never executed.

Mounting is per file system: the kernel's exFAT driver refuses ``flush``
(a FAT option), so the options are chosen by type, and a partition of the
disk the box itself runs from (a Pi booted from USB) is never mounted.
:func:`mount_command` is pure so the command line is checked per file system
even where the test machine cannot mount FAT.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

MARKER = "EDGED-EXPORT.json"
MARKER_FORMAT = "edged-stick/1"
MARKER_MAX = 4096
ACCEPT = ("marker", "label", "marker_or_label", "any")
FILESYSTEMS = ("vfat", "exfat")
_COMMON = ("nosuid", "nodev", "noexec", "noatime")
#: Per file system: FAT flushes early (a pulled stick loses less) and takes names as UTF-8;
#: the kernel's exFAT driver has no ``flush`` and wants ``iocharset``.
_FS_OPTIONS = {"vfat": ("flush", "utf8"), "exfat": ("iocharset=utf8",)}
UDEV_DATA = Path("/run/udev/data")
BOOT_MOUNTS = ("/", "/boot", "/boot/firmware")


class StickError(Exception):
    """The stick cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    why: str  # what was found: "marker for site hb", "label EDGED", "no marker, label NONAME"


# -- the marker -----------------------------------------------------------------------


def read_marker(mount: Path) -> dict[str, Any] | None:
    """The stick's marker, or None: missing, a link, too big, not ours."""
    try:
        fd = os.open(mount / MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, MARKER_MAX + 1)
    finally:
        os.close(fd)
    if len(data) > MARKER_MAX:
        return None
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(obj, dict) or obj.get("format") != MARKER_FORMAT:
        return None
    return obj


def prepare(mount: Path, site: str, note: str = "") -> Path:
    """Write the marker (replacing an older one); ``site`` ``*`` serves every site."""
    if not mount.is_dir() or mount.is_symlink():
        raise StickError(f"{mount}: expected the mounted stick's folder")
    body = {
        "format": MARKER_FORMAT,
        "site": site,
        "prepared": datetime.now().astimezone().isoformat(timespec="seconds"),
        "note": note,
    }
    tmp = mount / f".{MARKER}.partial"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(body, fh, ensure_ascii=False, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, mount / MARKER)
    return mount / MARKER


def volume_label(mount: Path, udev_data: Path = UDEV_DATA) -> str | None:
    """The label of the file system mounted at ``mount``, from udev's database
    (readable by the export's sandbox, which has no access to the device itself)."""
    try:
        dev = os.stat(mount).st_dev
    except OSError:
        return None
    return udev_property(os.major(dev), os.minor(dev), "ID_FS_LABEL", udev_data)


def udev_property(major: int, minor: int, key: str, udev_data: Path = UDEV_DATA) -> str | None:
    try:
        text = (udev_data / f"b{major}:{minor}").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"E:{key}="):
            return line.split("=", 1)[1]
    return None


def judge(mount: Path, accept: str, site: str, label: str, found_label: str | None) -> Verdict:
    """Does this stick get the automatic export? Pure apart from reading the marker."""
    if accept == "any":
        return Verdict(True, "every stick is accepted (ledger.usb_accept = any)")
    marker = read_marker(mount) if accept in ("marker", "marker_or_label") else None
    if marker is not None:
        for_site = str(marker.get("site") or "")
        if for_site in ("*", site):
            return Verdict(True, f"marker for site {for_site}")
        if accept == "marker":
            return Verdict(False, f"marker for another site ({for_site}, this is {site})")
    if accept in ("label", "marker_or_label") and found_label and found_label == label:
        return Verdict(True, f"volume label {found_label}")
    seen = f"label {found_label!r}" if found_label else "no label"
    want = {
        "marker": f"a marker ({MARKER})",
        "label": f"the volume label {label!r}",
        "marker_or_label": f"a marker ({MARKER}) or the volume label {label!r}",
    }[accept]
    return Verdict(False, f"not prepared: no {want.removeprefix('a ')} found ({seen})")


# -- mounting (root, from the export unit) --------------------------------------------


def mount_options(fstype: str, uid: int, gid: int) -> str:
    if fstype not in FILESYSTEMS:
        raise StickError(
            f"file system {fstype or 'unknown'}: the export takes FAT32 (vfat) or exFAT sticks;"
            " format the stick as FAT32 or exFAT"
        )
    return ",".join((*_COMMON, *_FS_OPTIONS[fstype], f"uid={uid}", f"gid={gid}", "umask=077"))


def mount_command(device: str, mountpoint: str, fstype: str, uid: int, gid: int) -> list[str]:
    """The mount(8) command line for a stick of ``fstype``."""
    return ["mount", "-t", fstype, "-o", mount_options(fstype, uid, gid), device, mountpoint]


def disk_of(name: str, sys_block: Path = Path("/sys/class/block")) -> str:
    """The whole disk a block device belongs to: sda1 → sda, mmcblk0p2 → mmcblk0."""
    entry = sys_block / name
    if (entry / "partition").exists():
        return Path(os.path.realpath(entry)).parent.name
    return name


def boot_disks(
    mountinfo: Path = Path("/proc/self/mountinfo"),
    sys_dev: Path = Path("/sys/dev/block"),
    sys_block: Path = Path("/sys/class/block"),
) -> set[str]:
    """The disks that hold / , /boot or /boot/firmware."""
    out: set[str] = set()
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) < 5 or parts[4] not in BOOT_MOUNTS:
            continue
        majmin = parts[2]
        if majmin.startswith("0:"):
            continue  # overlay, tmpfs, a container's root: no disk
        link = sys_dev / majmin
        if link.exists():
            out.add(disk_of(Path(os.path.realpath(link)).name, sys_block))
    return out


def check_not_boot(device: str, **paths: Any) -> None:
    name = Path(device).name
    disk = disk_of(name, paths.get("sys_block", Path("/sys/class/block")))
    if disk in boot_disks(**paths):
        raise StickError(
            f"{device} is on {disk}, the disk this box runs from: not a stick, left alone"
        )


def filesystem_type(device: str, udev_data: Path = UDEV_DATA) -> str:
    """The file system on ``device``: udev's record, else blkid."""
    try:
        st = os.stat(device)
        found = udev_property(os.major(st.st_rdev), os.minor(st.st_rdev), "ID_FS_TYPE", udev_data)
    except OSError:
        found = None
    if found:
        return found
    try:
        out = subprocess.run(
            ["blkid", "-o", "value", "-s", "TYPE", device],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StickError(f"{device}: cannot tell its file system ({exc})") from None
    return out.stdout.strip()


def mount(device: str, mountpoint: str, user: str = "edged") -> list[str]:
    """Mount a stick for the export (as root): refuses the boot disk and other file systems."""
    import pwd

    check_not_boot(device)
    fstype = filesystem_type(device)
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise StickError(f"user {user!r} does not exist (the export runs as it)") from None
    cmd = mount_command(device, mountpoint, fstype, pw.pw_uid, pw.pw_gid)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise StickError(f"{' '.join(cmd)} failed: {res.stderr.strip() or res.returncode}")
    return cmd
