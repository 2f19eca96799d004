"""The right stick: prepared ones only, FAT32 and exFAT each mounted its own way, never the
boot disk; and exports that arrive whole on real FAT32 and exFAT file systems."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edged.devicekey import create, key_path
from edged.ledger import LedgerStore
from edged.ledger.cli import register
from edged.ledger.export_format import fat_safe
from edged.ledger.export_verify import verify_export
from edged.ledger.stick import (
    MARKER,
    StickError,
    check_not_boot,
    filesystem_type,
    judge,
    mount_command,
    prepare,
    read_marker,
    volume_label,
)
from tests.ledger.gate_day import fill

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
IS_ROOT = os.geteuid() == 0


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edged")
    parser.add_argument("--config")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    d = tmp_path_factory.mktemp("box")
    with LedgerStore(d / "ledger.db") as s:
        fill(s, d / "images", d / "documents")
    key, _ = create(key_path(d))
    return d, key.public_hex


def usb_export(d: Path, mount: Path) -> int:
    argv = ["export", "--db", str(d / "ledger.db"), "--usb", str(mount), "--site", "hbsteel"]
    return run([*argv, "--images", "--images-dir", str(d / "images"), "--label", "NONAME"])


# -- mount options per file system ---------------------------------------------------


def test_fat32_and_exfat_each_get_their_own_mount_options() -> None:
    fat = mount_command("/dev/sdb1", "/run/edged-usb/sdb1", "vfat", 998, 997)
    assert fat[:3] == ["mount", "-t", "vfat"] and fat[-2:] == ["/dev/sdb1", "/run/edged-usb/sdb1"]
    fat_opts = fat[4].split(",")
    ex_opts = mount_command("/dev/sdb1", "/mnt", "exfat", 998, 997)[4].split(",")
    for opts in (fat_opts, ex_opts):
        assert {"nosuid", "nodev", "noexec", "noatime", "uid=998", "gid=997", "umask=077"} <= set(
            opts
        )
    assert "flush" in fat_opts and "utf8" in fat_opts
    assert "flush" not in ex_opts and "iocharset=utf8" in ex_opts  # exFAT refuses flush
    with pytest.raises(StickError, match=r"FAT32 \(vfat\) or exFAT"):
        mount_command("/dev/sdb1", "/mnt", "ntfs", 1, 1)


def test_the_unit_mounts_through_mount_stick_and_the_rule_skips_boot_partitions() -> None:
    unit = (SYSTEMD / "edged-usb-export@.service").read_text()
    assert "ExecCondition=+/opt/edged/venv/bin/edged export mount-stick /dev/%I" in unit
    assert "flush" not in "".join(line for line in unit.splitlines() if line.startswith("Exec"))
    rule = (SYSTEMD / "99-edged-usb.rules").read_text()
    assert 'ENV{ID_FS_LABEL}!="bootfs|boot|BOOT|system-boot|RECOVERY"' in rule


def _fake_sys(tmp: Path, root_disk: str) -> dict[str, Path]:
    """A sysfs and mountinfo where / is on <root_disk>2 and a stick sdb1 is plugged in."""
    block, dev = tmp / "sys/class/block", tmp / "sys/dev/block"
    for disk, nums in ((root_disk, "8:0"), ("sdb", "8:16")):
        (tmp / "devices" / disk).mkdir(parents=True)
        (block).mkdir(parents=True, exist_ok=True)
        dev.mkdir(parents=True, exist_ok=True)
        os.symlink(tmp / "devices" / disk, block / disk)
        for part in (1, 2):
            p = tmp / "devices" / disk / f"{disk}{part}"
            p.mkdir()
            (p / "partition").write_text(str(part))
            os.symlink(p, block / f"{disk}{part}")
            major, minor = nums.split(":")
            os.symlink(p, dev / f"{major}:{int(minor) + part}")
    info = tmp / "mountinfo"
    info.write_text(
        "22 1 8:2 / / rw,relatime - ext4 /dev/sda2 rw\n"
        "23 22 8:1 / /boot/firmware rw - vfat /dev/sda1 rw\n"
        "24 22 0:5 / /run rw - tmpfs tmpfs rw\n"
    )
    return {"mountinfo": info, "sys_dev": dev, "sys_block": block}


def test_a_partition_of_the_disk_the_box_runs_from_is_never_mounted(tmp_path: Path) -> None:
    paths = _fake_sys(tmp_path, "sda")
    with pytest.raises(StickError, match="the disk this box runs from"):
        check_not_boot("/dev/sda1", **paths)
    check_not_boot("/dev/sdb1", **paths)  # a stick


# -- which stick ------------------------------------------------------------------------


def test_markers_labels_and_what_is_refused(tmp_path: Path) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    assert not judge(stick, "marker", "hb", "EDGED", None).accepted
    assert judge(stick, "label", "hb", "EDGED", "EDGED").accepted
    assert not judge(stick, "label", "hb", "EDGED", "KINGSTON").accepted
    assert judge(stick, "any", "hb", "EDGED", None).accepted
    prepare(stick, "*")
    assert judge(stick, "marker", "hb", "EDGED", None).why == "marker for site *"
    assert judge(stick, "marker_or_label", "other", "EDGED", None).accepted
    assert not judge(stick, "label", "hb", "EDGED", None).accepted  # label only: marker not asked
    # a marker that is a link, too big or not ours counts as none
    (stick / MARKER).unlink()
    os.symlink("/etc/passwd", stick / MARKER)
    assert read_marker(stick) is None
    (stick / MARKER).unlink()
    (stick / MARKER).write_text('{"format": "edged-stick/1", "site": "hb"}' + " " * 5000)
    assert read_marker(stick) is None
    (stick / MARKER).write_text('{"format": "something-else", "site": "hb"}')
    assert read_marker(stick) is None


def test_the_label_comes_from_udev(tmp_path: Path) -> None:
    st = os.stat(tmp_path)
    udev = tmp_path / "udev"
    udev.mkdir()
    (udev / f"b{os.major(st.st_dev)}:{os.minor(st.st_dev)}").write_text(
        "S:disk/by-label/EDGED\nE:ID_FS_TYPE=exfat\nE:ID_FS_LABEL=EDGED\n"
    )
    assert volume_label(tmp_path, udev) == "EDGED"
    assert volume_label(tmp_path, tmp_path / "none") is None


def test_cli_prepare_stick_needs_a_site_without_a_config(tmp_path: Path, capsys) -> None:
    assert run(["--config", str(tmp_path / "none.toml"), "export", "prepare-stick", str(tmp_path)])
    assert "--site" in capsys.readouterr().err
    assert run(["export", "prepare-stick", str(tmp_path), "--any-site"]) == 0
    assert read_marker(tmp_path)["site"] == "*"


# -- real file systems ------------------------------------------------------------------


def _image(tmp: Path, fs: str) -> Path:
    tool = {"vfat": "mkfs.vfat", "exfat": "mkfs.exfat"}[fs]
    if shutil.which(tool) is None:
        pytest.skip(
            f"{tool} not installed (scripts/setup.sh --test installs dosfstools, exfatprogs)"
        )
    img = tmp / f"{fs}.img"
    with img.open("wb") as fh:
        fh.truncate(64 * 1024 * 1024)
    args = ["-F", "32", "-n", "STICK"] if fs == "vfat" else ["-L", "STICK"]
    subprocess.run([tool, *args, str(img)], check=True, capture_output=True)
    return img


def _kernel_has(fs: str) -> bool:
    return fs in Path("/proc/filesystems").read_text().split()


@pytest.mark.parametrize("fs", ["vfat", "exfat"])
def test_blkid_tells_the_file_system_of_a_stick(tmp_path: Path, fs: str) -> None:
    img = _image(tmp_path, fs)
    if shutil.which("blkid") is None:
        pytest.skip("blkid not installed")
    assert filesystem_type(str(img), tmp_path) == fs


@pytest.mark.parametrize("fs", ["vfat", "exfat"])
def test_kernel_mount_with_our_options_then_export(tmp_path: Path, fs: str, data) -> None:
    """Where the kernel has the driver and we are root: the real mount command line."""
    if not (IS_ROOT and _kernel_has(fs) and shutil.which("losetup")):
        pytest.skip(f"needs root and the kernel's {fs} driver (this kernel: no)")
    img = _image(tmp_path, fs)
    loop = subprocess.run(
        ["losetup", "-f", "--show", str(img)], check=True, capture_output=True, text=True
    ).stdout.strip()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        subprocess.run(mount_command(loop, str(mnt), fs, 0, 0), check=True)
        try:
            prepare(mnt, "hbsteel")
            assert usb_export(data[0], mnt) == 0
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
        subprocess.run(["mount", "-o", "ro", loop, str(mnt)], check=True)
        try:
            (folder,) = (mnt / "edged-export").iterdir()
            assert verify_export(folder, data[1]).ok
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)


def test_exfat_stick_through_fuse_ignored_until_prepared_then_exported(
    tmp_path: Path, data
) -> None:
    """exFAT as the exfat-fuse driver writes it, on a loop device: what a 64 GB stick is."""
    fuse = shutil.which("mount.exfat-fuse")
    if not (IS_ROOT and fuse and shutil.which("losetup") and Path("/dev/fuse").exists()):
        pytest.skip("needs root, /dev/fuse, losetup and exfat-fuse")
    img = _image(tmp_path, "exfat")
    loop = subprocess.run(
        ["losetup", "-f", "--show", str(img)], check=True, capture_output=True, text=True
    ).stdout.strip()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        subprocess.run([fuse, loop, str(mnt)], check=True, capture_output=True)
        try:
            with LedgerStore(data[0] / "ledger.db") as s:
                s.set_state("export.passages_seq", "0")
                s.set_state("export.audit_seq", "0")
            assert usb_export(data[0], mnt) == 0
            assert not (mnt / "edged-export").exists()  # not prepared: left alone
            prepare(mnt, "hbsteel")
            assert usb_export(data[0], mnt) == 0
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
        subprocess.run([fuse, "-o", "ro", loop, str(mnt)], check=True, capture_output=True)
        try:
            (folder,) = (mnt / "edged-export").iterdir()
            res = verify_export(folder, data[1])
            assert res.ok, res.problems
            assert res.rows == 22 and (folder / "photos/10/nameplate.jpg").is_file()
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)


def test_fat32_image_holds_an_export_whole(tmp_path: Path, data) -> None:
    """Without the kernel's FAT driver, the export is copied onto a FAT32 image with mtools
    and read back: every name fits FAT, and what comes back still verifies."""
    if shutil.which("mcopy") is None:
        pytest.skip("mtools not installed")
    img = _image(tmp_path, "vfat")
    stage = tmp_path / "stage"
    stage.mkdir()
    with LedgerStore(data[0] / "ledger.db") as s:
        s.set_state("export.passages_seq", "0")
        s.set_state("export.audit_seq", "0")
    prepare(stage, "hbsteel")
    assert usb_export(data[0], stage) == 0
    (folder,) = (stage / "edged-export").iterdir()
    names = [p.relative_to(stage).as_posix() for p in stage.rglob("*")]
    assert names and all(fat_safe(n) for n in names), [n for n in names if not fat_safe(n)]
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    subprocess.run(
        ["mcopy", "-s", "-i", str(img), str(stage / "edged-export"), "::/"],
        check=True,
        env=env,
        capture_output=True,
    )
    back = tmp_path / "back"
    back.mkdir()
    subprocess.run(
        ["mcopy", "-s", "-i", str(img), "::/edged-export", str(back)],
        check=True,
        env=env,
        capture_output=True,
    )
    res = verify_export(back / "edged-export" / folder.name, data[1])
    assert res.ok and res.rows == 22, res.problems


def test_fat_names() -> None:
    assert fat_safe("hbsteel-east-20240501T080000-p1-22/photos/12/snapshot-1.jpg")
    for bad in ("a:b", "x/CON.txt", "a/b.", 'q"', "a\\b"):
        assert not fat_safe(bad)
