"""The .deb: built for real (scripts/build-deb.py), then installed with apt into a throwaway root.

The throwaway root is this machine's own Debian seen through an overlay whose
writes go to a tmpfs, in a private mount namespace: apt, dpkg, adduser and
the maintainer scripts run for real and the machine is left as it was. apt
runs in a network namespace with no network, so the install is proven to
need none. Then systemd itself is booted in that root (its own PID
namespace) and starts edged.service from the package: the real sandbox
(system call filter, read-only /, device policy) around the real daemon,
its journal entries checked for their priorities. Then an upgrade keeps
config and data, remove keeps them, purge removes them.

The root part needs root, unshare and overlayfs (CI runs as root); the
package is checked from its contents wherever dpkg-deb is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models" / "onnx"
pytestmark = pytest.mark.slow


def _build(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build-deb.py"), "--out", str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb not installed")
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the package is built with Python 3.11, the target's python3")
    manifest = tomllib.loads((REPO / "models" / "manifest.toml").read_text())
    if any(not (MODELS / m["name"]).is_file() for m in manifest["model"]):
        pytest.skip("models not fetched: run python models/fetch.py")
    out = tmp_path_factory.mktemp("deb")
    started = time.monotonic()
    res = _build(out, "--arch", "amd64", "--compress", "gzip", "--level", "1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    footprint = [line for line in res.stdout.splitlines() if line.startswith("installed footprint")]
    assert footprint, res.stdout
    print(f"\namd64 {footprint[0]}; built in {time.monotonic() - started:.0f} s")
    (path,) = out.glob("edged_*_amd64.deb")
    return path


def dpkg_deb(*args: str) -> str:
    return subprocess.run(
        ["dpkg-deb", *args], capture_output=True, text=True, check=True, timeout=300
    ).stdout


def test_the_package_carries_venv_models_units_and_rule(deb: Path) -> None:
    info = dpkg_deb("-f", str(deb))
    fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line)
    assert fields["Package"] == "edged" and fields["Architecture"] == "amd64"
    assert "python3 (<< 3.12)" in fields["Depends"] and "adduser" in fields["Depends"]
    assert "Recommends" not in fields, "a recommended package would need the network"
    listing = dpkg_deb("-c", str(deb))
    names = {line.split()[5].lstrip(".") for line in listing.splitlines()}
    for path in (
        "/opt/edged/venv/bin/edged",
        "/opt/edged/venv/pyvenv.cfg",
        "/lib/systemd/system/edged.service",
        "/lib/systemd/system/edged-usb-export@.service",
        "/lib/udev/rules.d/99-edged-usb.rules",
        "/opt/edged/share/edged.example.toml",
        "/opt/edged/models/clp_det.onnx",
        "/opt/edged/models/ch_PP-OCRv4_rec_plate.onnx",
        "/usr/share/doc/edged/INSTALL.md",
    ):
        assert path in names, path
    assert any(
        "/usr/bin/edged -> /opt/edged/venv/bin/edged" in line for line in listing.splitlines()
    )
    site = "/opt/edged/venv/lib/python3.11/site-packages/"
    assert f"{site}edged/cli/__pycache__/main.cpython-311.pyc" in names, "bytecode is shipped"
    assert f"{site}lgpio.py" in names, "the Pi 4/5 GPIO back-end"
    assert not any(n.startswith(f"{site}onnx/") for n in names), "onnx is set-up only"
    assert not any("libonnxruntime.so" in n for n in names)
    assert not any(n.startswith("/etc/") for n in names), "config is made by postinst, not owned"


def test_the_arm64_footprint_is_within_target(tmp_path: Path) -> None:
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the package is built with Python 3.11, the target's python3")
    res = _build(tmp_path, "--arch", "arm64", "--footprint-only")
    line = next((x for x in res.stdout.splitlines() if x.startswith("installed footprint")), "")
    print(f"\narm64 {line}")
    m = re.match(r"installed footprint: (\d+) MB", line)
    assert m, res.stdout[-2000:] + res.stderr[-2000:]
    assert int(m.group(1)) < 250 and res.returncode == 0, line


# -- installed into a throwaway root -------------------------------------------------------


@dataclass
class Root:
    """An overlay of this machine's / in a private mount namespace held by one process."""

    base: Path
    holder: subprocess.Popen[bytes]
    systemd: int | None = None

    @property
    def merged(self) -> Path:
        return self.base / "m"

    def sh(
        self, script: str, network: bool = False, timeout: float = 300, input: str | None = None
    ) -> str:
        cmd = ["nsenter", "-t", str(self.holder.pid), "-m"]
        if not network:
            cmd += ["unshare", "-n"]
        cmd += ["chroot", str(self.merged), "/usr/bin/env", "-i"]
        cmd += [
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "DEBIAN_FRONTEND=noninteractive",
            "LANG=C.UTF-8",
        ]
        cmd += ["sh", "-c", script]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
        assert res.returncode == 0, f"{script}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        return res.stdout

    def in_systemd(self, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        assert self.systemd is not None
        return subprocess.run(
            ["nsenter", "-t", str(self.systemd), "-m", "-p", "-r", "-w", *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def put(self, src: Path, dest: str) -> None:
        subprocess.run(
            ["nsenter", "-t", str(self.holder.pid), "-m", "cp", str(src), f"{self.merged}{dest}"],
            check=True,
            timeout=120,
        )


HOLDER = r"""
set -e
B=$1
mount -t tmpfs -o size=3g tmpfs "$B"
mkdir -p "$B/u" "$B/w" "$B/m"
mount -t overlay overlay -o "lowerdir=/,upperdir=$B/u,workdir=$B/w" "$B/m"
M=$B/m
# A /dev of its own, as a container gets: the basic nodes, plus a serial port
# (ttyS4: the 8250 driver's major, no UART behind it) and a device the service
# must not open (/dev/net/tun), to see the unit's device policy at work.
mount -t tmpfs -o mode=755 tmpfs "$M/dev"
mknod -m 666 "$M/dev/null" c 1 3
mknod -m 666 "$M/dev/zero" c 1 5
mknod -m 666 "$M/dev/full" c 1 7
mknod -m 666 "$M/dev/random" c 1 8
mknod -m 666 "$M/dev/urandom" c 1 9
mknod -m 666 "$M/dev/tty" c 5 0
mkdir -p "$M/dev/pts" "$M/dev/shm" "$M/dev/net"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$M/dev/pts"
ln -s pts/ptmx "$M/dev/ptmx"
mknod -m 660 "$M/dev/ttyS4" c 4 68
chgrp dialout "$M/dev/ttyS4"
mknod -m 666 "$M/dev/net/tun" c 10 200
mount --rbind /sys "$B/m/sys"
mount -t proc proc "$B/m/proc"
mount -t tmpfs tmpfs "$B/m/run"
mount -t tmpfs tmpfs "$B/m/tmp"
echo ready
exec sleep 3600
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Root]:
    if os.geteuid() != 0:
        pytest.skip("installing into a throwaway root needs root (CI runs as root)")
    for tool in ("unshare", "nsenter", "chroot"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    if not Path("/usr/bin/apt-get").exists() or not Path("/usr/bin/python3").exists():
        pytest.skip("not a Debian system with python3")
    base = tmp_path_factory.mktemp("root")
    holder = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", HOLDER, "sh", str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert holder.stdout is not None
    line = holder.stdout.readline().decode().strip()
    if line != "ready":
        holder.kill()
        pytest.skip(f"no overlay root here: {holder.communicate()[1].decode()[-500:]}")
    r = Root(base, holder)
    try:
        yield r
    finally:
        if r.systemd is not None:
            subprocess.run(["kill", "-9", str(r.systemd)], check=False)
        holder.kill()
        holder.wait()


@pytest.fixture(scope="module")
def installed(root: Root, deb: Path) -> Root:
    root.put(deb, "/tmp/edged.deb")
    started = time.monotonic()
    out = root.sh("apt-get install -y /tmp/edged.deb")
    print(f"\napt install of the .deb with no network took {time.monotonic() - started:.1f} s")
    assert "edged: wrote /etc/edged/edged.toml" in out, out
    return root


def test_apt_installs_it_without_network(installed: Root) -> None:
    r = installed
    assert r.sh(
        "id -nu edged; stat -c '%U:%G %a' /etc/edged/edged.toml /var/lib/edged"
    ).split() == [
        "edged",
        "root:edged",
        "640",
        "edged:edged",
        "750",
    ]
    config = r.sh("cat /etc/edged/edged.toml")
    assert 'model_dir = "/opt/edged/models"' in config.splitlines()
    assert 'timestamps = "auto"' in config.splitlines(), "no time stamps of our own in the journal"
    assert "is valid" in r.sh("edged config check")
    assert r.sh("/usr/bin/edged --version").startswith("edged ")
    assert r.sh("test -L /etc/systemd/system/multi-user.target.wants/edged.service && echo on") == (
        "on\n"
    )
    # onnx is not in the daemon's environment; ONNX Runtime and lgpio are.
    r.sh(
        "cd /tmp && /opt/edged/venv/bin/python -c 'import onnxruntime, lgpio, cv2, simplejpeg, edged.lpr'"
        " && ! /opt/edged/venv/bin/python -c 'import onnx' 2>/dev/null"
    )


def test_the_installed_package_reads_a_plate_with_its_models(
    installed: Root, tmp_path: Path
) -> None:
    import cv2

    from edged.lpr.synth import render_scene

    image = tmp_path / "scene.jpg"
    assert cv2.imwrite(str(image), render_scene("冀B12345", "yellow", seed=3))
    installed.put(image, "/tmp/scene.jpg")
    out = installed.sh(
        "cd /tmp && edged --config /etc/edged/edged.toml lpr read --json /tmp/scene.jpg"
    )
    plates = [p["text"] for p in json.loads(out.splitlines()[-1])["plates"]]
    assert "冀B12345" in plates


def test_the_service_runs_in_its_sandbox_and_logs_with_priorities(installed: Root) -> None:
    """systemd booted in the root starts edged.service from the package."""
    r = installed
    boot = subprocess.Popen(
        [
            *("nsenter", "-t", str(r.holder.pid), "-m", "unshare", "--pid", "--fork"),
            *("--mount-proc=/proc", f"--root={r.merged}", "/usr/bin/env", "container=other"),
            *("/lib/systemd/systemd", "--unit=basic.target"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while r.systemd is None and time.monotonic() < deadline:
        found = subprocess.run(
            ["pgrep", "-P", str(boot.pid)], capture_output=True, text=True
        ).stdout.split()
        r.systemd = int(found[0]) if found else None
        time.sleep(0.2)
    assert r.systemd is not None, "systemd did not start"
    try:
        check_the_running_service(r)
    finally:
        subprocess.run(["kill", "-9", str(r.systemd)], check=False)
        boot.wait(timeout=30)
        r.systemd = None


def check_the_running_service(r: Root) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = r.in_systemd("systemctl", "is-system-running").stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(0.5)
    # The gate's lgpio back-end is imported as on a Pi: its pipe must land in /run/edged.
    r.in_systemd("systemctl", "set-environment", "GPIOZERO_PIN_FACTORY=lgpio")
    start = r.in_systemd("systemctl", "start", "edged.service", timeout=180)
    assert start.returncode == 0, start.stderr + r.in_systemd("journalctl", "-u", "edged").stdout
    assert r.in_systemd("systemctl", "is-active", "edged").stdout.strip() == "active"
    status = r.in_systemd("systemctl", "show", "edged", "-p", "StatusText").stdout
    assert "degraded: main.gpio" in status, status  # no GPIO chip on this machine
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pipes = r.in_systemd("ls", "-A", "/run/edged").stdout.split()
        if pipes:
            break
        time.sleep(0.5)
    assert pipes == [".lgd-nfy0"], pipes

    entries = [
        json.loads(line)
        for line in r.in_systemd("journalctl", "-u", "edged", "-o", "json").stdout.splitlines()
    ]
    lines = [
        (int(e["PRIORITY"]), e["MESSAGE"]) for e in entries if e.get("SYSLOG_IDENTIFIER") == "edged"
    ]
    assert any("event=ready" in m for _, m in lines), lines
    level_priority = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}
    for priority, message in lines:
        m = re.match(r"level=(\w+) ", message)
        if m:  # the daemon's own lines (config check prints a plain OK line)
            assert priority == level_priority[m.group(1)], (priority, message)
            assert not message.startswith("timestamp="), message
    # journalctl -p warning shows exactly the warnings and worse: here, the missing GPIO chip.
    warn = r.in_systemd("journalctl", "-u", "edged", "-p", "warning", "-o", "cat").stdout
    assert warn.strip() and all(
        re.match(r"level=(warning|error|critical) ", line) for line in warn.splitlines()
    ), warn
    assert "pin factory lgpio does not know this board" in warn
    # MQTT over the network the sandbox keeps: a broker in the root, the daemon connects.
    if r.in_systemd("systemctl", "cat", "mosquitto.service").returncode == 0:
        assert r.in_systemd("systemctl", "start", "mosquitto").returncode == 0
        r.in_systemd("systemctl", "restart", "edged.service", timeout=180)
        deadline = time.monotonic() + 60
        log = ""
        while "event=mqtt_connected" not in log and time.monotonic() < deadline:
            time.sleep(0.5)
            log = r.in_systemd("journalctl", "-u", "edged", "-o", "cat").stdout
        assert "event=mqtt_connected host=localhost port=1883" in log, log[-3000:]
    # The control socket answers a technician's edged status.
    status_text = r.in_systemd("edged", "--config", "/etc/edged/edged.toml", "status").stdout
    assert "component ledger: running" in status_text, status_text
    # Devices, through the unit's own sandbox: the serial port is let through (ENXIO:
    # no UART behind the node), a device the unit does not list is refused (EPERM).
    assert devices_seen_by_the_unit(r) == {
        "/dev/ttyS4": "ENXIO",
        "/dev/net/tun": "EPERM",
        "/dev/null": "opened",
    }
    # The USB export in its own sandbox: the real export writes its folder, and no
    # Internet socket can even be made.
    exported, sockets = export_in_its_sandbox(r)
    assert "level=info component=ledger event=export_done" in exported, exported
    assert "exported passages" in exported, exported
    assert sockets == {"AF_INET": "EAFNOSUPPORT", "AF_INET6": "EAFNOSUPPORT"}, sockets
    # The installed unit, as systemd loaded it, keeps its score.
    sec = r.in_systemd("systemd-analyze", "security", "edged.service", "--no-pager").stdout
    score = float(re.search(r"Overall exposure level for edged.service: (\d+\.\d)", sec).group(1))
    assert score <= 2.5, sec
    stop = r.in_systemd("systemctl", "stop", "edged.service", timeout=60)
    assert stop.returncode == 0, stop.stderr


DEVICE_CHECK = """\
import errno, os
for path in ("/dev/ttyS4", "/dev/net/tun", "/dev/null"):
    try:
        os.close(os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK))
        print(path, "opened")
    except OSError as exc:
        print(path, errno.errorcode[exc.errno])
"""


def devices_seen_by_the_unit(r: Root) -> dict[str, str]:
    """Open device nodes from a unit that is edged.service with only its command changed."""
    unit = r.in_systemd("cat", "/lib/systemd/system/edged.service").stdout
    drop = ("ExecStartPre=", "WatchdogSec=", "Restart=", "NotifyAccess=")
    lines = [line for line in unit.splitlines() if not line.startswith(drop)]
    lines = [
        "Type=oneshot"
        if line == "Type=notify"
        else "ExecStart=/opt/edged/venv/bin/python /run/devcheck.py"
        if line.startswith("ExecStart=")
        else line
        for line in lines
    ]
    assert "Type=oneshot" in lines and "DevicePolicy=closed" in lines
    r.sh("cat > /run/systemd/system/edged-devcheck.service", input="\n".join(lines) + "\n")
    r.sh("cat > /run/devcheck.py", input=DEVICE_CHECK)
    assert r.in_systemd("systemctl", "daemon-reload").returncode == 0
    run = r.in_systemd("systemctl", "start", "edged-devcheck.service")
    assert run.returncode == 0, run.stderr
    out = r.in_systemd("journalctl", "-u", "edged-devcheck", "-o", "cat").stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if line.startswith("/dev/"))


SOCKET_CHECK = """\
import errno, socket
for name in ("AF_INET", "AF_INET6"):
    try:
        socket.socket(getattr(socket, name), socket.SOCK_STREAM).close()
        print("family", name, "allowed")
    except OSError as exc:
        print("family", name, errno.errorcode[exc.errno])
"""


def export_in_its_sandbox(r: Root) -> tuple[str, dict[str, str]]:
    """Run the export unit's command, and a socket check, under the export unit's sandbox.

    The unit is edged-usb-export@.service without the stick (no BindsTo= on a device
    that is not there, no mount): the export writes into its runtime directory instead,
    prepared for it first as a stick would be (``edged export prepare-stick``, in the
    same sandbox).
    """
    unit = r.in_systemd("cat", "/lib/systemd/system/edged-usb-export@.service").stdout
    drop = ("BindsTo=", "ExecCondition=", "ExecStartPre=", "ExecStopPost=")
    base = [line for line in unit.splitlines() if not line.startswith(drop)]
    prepare = (
        "ExecStartPre=/opt/edged/venv/bin/edged export prepare-stick /run/edged-usb/%i --any-site"
    )
    base.insert(next(i for i, line in enumerate(base) if line.startswith("ExecStart=")), prepare)
    assert "PrivateNetwork=yes" in base and "RestrictAddressFamilies=AF_UNIX" in base
    check = [
        "ExecStart=/opt/edged/venv/bin/python /run/socketcheck.py"
        if line.startswith("ExecStart=")
        else line
        for line in base
    ]
    r.sh("cat > /run/systemd/system/edged-export-check@.service", input="\n".join(base) + "\n")
    r.sh("cat > /run/systemd/system/edged-socket-check@.service", input="\n".join(check) + "\n")
    r.sh("cat > /run/socketcheck.py", input=SOCKET_CHECK)
    assert r.in_systemd("systemctl", "daemon-reload").returncode == 0
    for unit_name in ("edged-export-check@sdz9.service", "edged-socket-check@sdz9.service"):
        run = r.in_systemd("systemctl", "start", unit_name, timeout=120)
        assert run.returncode == 0, run.stderr + r.in_systemd("journalctl", "-u", unit_name).stdout
    exported = r.in_systemd(
        "journalctl", "-u", "edged-export-check@sdz9.service", "-o", "cat"
    ).stdout
    out = r.in_systemd("journalctl", "-u", "edged-socket-check@sdz9.service", "-o", "cat").stdout
    sockets = dict(line.split()[1:] for line in out.splitlines() if line.startswith("family "))
    return exported, sockets


def test_upgrade_keeps_config_and_data_then_remove_and_purge(
    installed: Root, deb: Path, tmp_path: Path
) -> None:
    # Last: it changes the installation the tests above look at.
    r = installed
    r.sh('sed -i \'s/^id = "site1"/id = "plant-east"/\' /etc/edged/edged.toml')
    r.sh("echo ours > /var/lib/edged/keep.txt")
    # The next version: the same package, a higher version and a changed module.
    tree = tmp_path / "tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True, timeout=300)
    control = tree / "DEBIAN" / "control"
    control.write_text(control.read_text().replace("Version: 0.1.0-1", "Version: 0.1.0-2"))
    init = tree / "opt/edged/venv/lib/python3.11/site-packages/edged/__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', '__version__ = "0.1.0.2"'))
    subprocess.run([sys.executable, "-m", "py_compile", str(init)], check=True, timeout=60)
    newer = tmp_path / "edged_0.1.0-2_amd64.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "-b", str(tree), str(newer)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    r.put(newer, "/tmp/edged-2.deb")
    out = r.sh("apt-get install -y /tmp/edged-2.deb")
    assert "kept /etc/edged/edged.toml" in out, out
    assert 'id = "plant-east"' in r.sh("cat /etc/edged/edged.toml")
    assert r.sh("cat /var/lib/edged/keep.txt") == "ours\n"
    assert r.sh("cd /tmp && edged --version").strip() == "edged 0.1.0.2"
    assert r.sh("dpkg-query -W -f '${Version}' edged") == "0.1.0-2"

    out = r.sh("apt-get remove -y edged")
    assert "kept /etc/edged and /var/lib/edged" in out
    assert (
        r.sh("ls /opt/edged /lib/systemd/system/edged.service /usr/bin/edged 2>&1 || true").count(
            "No such file"
        )
        == 3
    )
    assert 'id = "plant-east"' in r.sh("cat /etc/edged/edged.toml")
    assert r.sh("cat /var/lib/edged/keep.txt") == "ours\n"
    assert r.sh("id -u edged >/dev/null && echo user") == "user\n"

    r.sh("apt-get purge -y edged")
    assert r.sh("ls -d /etc/edged /var/lib/edged 2>&1 || true").count("No such file") == 2
    assert r.sh("id edged >/dev/null 2>&1 || echo gone") == "gone\n"
    assert r.sh("dpkg-query -W -f '${db:Status-Abbrev}' edged 2>&1 || true").strip() in (
        "",
        "un",
        "dpkg-query: no packages found matching edged",
    )
