#!/usr/bin/env python3
"""Build ``edged_<version>_<arch>.deb``: the whole appliance in one file, for a box without internet.

The package carries everything the daemon runs with: a virtual environment in
``/opt/edged/venv`` (edged and every dependency, as binary wheels for the
target architecture, compiled to bytecode), the model files in
``/opt/edged/models`` (SHA-256 checked), the systemd units and the udev rule,
and ``/usr/bin/edged``. Its only dependencies are Debian's own ``python3``
(3.11, as in Bookworm and Raspberry Pi OS Bookworm), ``adduser`` and the C
libraries every such system has, so ``sudo apt install ./edged_*.deb`` needs
no network. docs/INSTALL.md explains the choice and the maintainer scripts
(``packaging/deb/``).

Cross-building works because nothing is compiled: pip picks wheels for the
target (``--platform manylinux…_aarch64``) and installs them with
``--target``, and the bytecode is the same on every architecture. Run it with
Python 3.11 (the target's; bytecode is version-specific) and pip. Needs
``dpkg-deb``; no root (``--root-owner-group``).

    python3.11 scripts/build-deb.py --arch arm64            # for a Raspberry Pi 4/5
    python3.11 scripts/build-deb.py --arch amd64 --compress gzip

The models come from ``models/onnx`` (``make setup`` fetches and derives
them) or ``--models DIR``. The build ends by printing the installed footprint.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PREFIX = "opt/edged"
PYTHON = (3, 11)
FOOTPRINT_LIMIT_MB = 250

#: manylinux tags a Debian 12 system (glibc 2.36) can load, newest first.
PLATFORMS = {
    "arm64": [f"manylinux_2_{n}_aarch64" for n in range(36, 16, -1)] + ["manylinux2014_aarch64"],
    "amd64": [f"manylinux_2_{n}_x86_64" for n in range(36, 16, -1)]
    + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"],
}

#: What the daemon never loads, taken out of the environment to keep the
#: footprint down (each with why it is safe to remove).
PRUNE = [
    "bin",  # console scripts of the dependencies (f2py, pymodbus.simulator…); edged has its own
    "numpy/*/tests",  # numpy's own test suite, 27 MB
    "numpy/tests",
    "numpy/f2py",  # the Fortran wrapper generator
    "numpy/_pyinstaller",
    "onnxruntime/transformers",  # model conversion and quantisation tools, not the runtime
    "onnxruntime/tools",
    "onnxruntime/quantization",
    "onnxruntime/datasets",
    # ONNX Runtime's C library for programs that link it from C; the Python binding
    # carries its own copy and never loads this file (no DT_NEEDED, no dlopen).
    "onnxruntime/capi/libonnxruntime.so.*",
    "setuptools",  # pulled in by colorzero's metadata; nothing imports it at run time
    "setuptools-*.dist-info",
    "pkg_resources",
    "_distutils_hack",
    "distutils-precedence.pth",
]

DOCS = ["README.md", "docs/INSTALL.md", "docs/FIELD.md", "docs/LEDGER.md", "docs/SERIAL.md"]

LAUNCHER = """#!/opt/edged/venv/bin/python
import sys

# The bytecode is shipped; a run as root must not add files dpkg does not know.
sys.dont_write_bytecode = True

from edged.cli.main import main  # noqa: E402

sys.exit(main())
"""


def say(text: str) -> None:
    print(f"build-deb: {text}", flush=True)


def run(cmd: list[str], **kw: object) -> None:
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def host_arch() -> str:
    try:
        return subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, "")


def version() -> str:
    text = (REPO / "edged" / "__init__.py").read_text()
    m = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not m:
        sys.exit("build-deb: error: no __version__ in edged/__init__.py")
    return m.group(1)


def deb_version(v: str, revision: str) -> str:
    # PEP 440 local/pre-release parts sort like Debian's with ~ and +.
    v = v.replace(".dev", "~dev").replace("rc", "~rc")
    return f"{v}-{revision}"


def du_bytes(root: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            p = Path(dirpath, name)
            if p.is_symlink() or not p.is_file():
                continue
            total += p.stat().st_size
    return total


def build_wheel(tmp: Path) -> Path:
    out = tmp / "wheel"
    src = tmp / "src"
    # A clean copy: a stale build/ or egg-info in the checkout must not leak in.
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "var", "build", "onnx", "__pycache__", "*.egg-info", "bench", "tests"
        ),
    )
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        stdout=subprocess.DEVNULL,
    )
    (wheel,) = out.glob("edged-*.whl")
    return wheel


def install_site(site: Path, wheel: Path, arch: str) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-compile",
        "--no-warn-script-location",
        "--disable-pip-version-check",
        "--target",
        str(site),
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        f"{PYTHON[0]}.{PYTHON[1]}",
        "--abi",
        f"cp{PYTHON[0]}{PYTHON[1]}",
    ]
    for tag in PLATFORMS[arch]:
        cmd += ["--platform", tag]
    # simplejpeg: apt's picamera2 imports it, and apt's own build of it is for
    # Bookworm's numpy 1.x, not the environment's numpy 2 (docs/INSTALL.md, Picamera2).
    cmd += ["-c", str(REPO / "constraints.txt"), str(wheel), "simplejpeg"]
    run(cmd)


def prune(site: Path) -> int:
    before = du_bytes(site)
    for pattern in PRUNE:
        for p in site.glob(pattern):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    for cache in site.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    return before - du_bytes(site)


def make_venv(venv: Path) -> Path:
    """The layout ``python3 -m venv --system-site-packages /opt/edged/venv`` makes, built
    by hand so it can be made for another architecture (it holds no binary of its own)."""
    major, minor = PYTHON
    site = venv / "lib" / f"python{major}.{minor}" / "site-packages"
    site.mkdir(parents=True)
    (venv / "lib64").symlink_to("lib")
    bin_ = venv / "bin"
    bin_.mkdir()
    (bin_ / "python").symlink_to("/usr/bin/python3")
    (bin_ / "python3").symlink_to("python")
    (bin_ / f"python{major}.{minor}").symlink_to("python")
    (venv / "pyvenv.cfg").write_text(
        "home = /usr/bin\n"
        # picamera2 (and libcamera's bindings) come from Raspberry Pi OS's apt.
        "include-system-site-packages = true\n"
        f"version = {major}.{minor}\n"
        f"executable = /usr/bin/python{major}.{minor}\n"
        f"command = /usr/bin/python3 -m venv --system-site-packages /{PREFIX}/venv\n"
    )
    launcher = bin_ / "edged"
    launcher.write_text(LAUNCHER)
    launcher.chmod(0o755)
    return site


def install_models(dest: Path, source: Path) -> None:
    dest.mkdir(parents=True)
    res = subprocess.run(
        [
            sys.executable,
            str(REPO / "models" / "fetch.py"),
            "--dest",
            str(dest),
            "--from",
            str(source),
            # what the daemon reads and what it is made from; not the measured-only
            # variants (INT8) or the alternative small recogniser: 14 MB a board
            # would carry for nothing (a clone's models/fetch.py makes them)
            "--required-only",
        ],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        sys.exit(
            f"build-deb: error: model files in {source} are missing or wrong:\n{res.stderr}"
            "fetch them first (python models/fetch.py), or name a folder with --models"
        )
    shutil.copy2(REPO / "models" / "manifest.toml", dest / "manifest.toml")


def control(arch: str, ver: str, installed_kib: int) -> str:
    deps = [
        # The venv's bytecode and binary wheels are for CPython 3.11 (Bookworm's python3).
        "python3 (>= 3.11~)",
        "python3 (<< 3.12)",
        "adduser",
        "libc6 (>= 2.34)",  # lgpio's manylinux_2_34 wheel; Bookworm has 2.36
        "libstdc++6",
        "libgcc-s1",
    ]
    return (
        "Package: edged\n"
        f"Version: {ver}\n"
        f"Architecture: {arch}\n"
        "Maintainer: edged maintainers <edged@localhost>\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: {', '.join(deps)}\n"
        "Suggests: python3-picamera2, mosquitto-clients, fonts-wqy-microhei\n"
        "Section: misc\n"
        "Priority: optional\n"
        "Homepage: https://example.invalid/edged\n"
        "Description: environmental gate appliance (plate recognition, admission, ledger)\n"
        " edged runs the unattended box at the vehicle gate of a steel, coking or\n"
        " cement plant: ONNX plate recognition, RFID and weighbridge over serial,\n"
        " admission policy, barrier over GPIO, a hash-chained ledger, MQTT uplink and\n"
        " HJ 212 reporting. Self-contained: its Python environment and models are\n"
        " in /opt/edged; config in /etc/edged, data in /var/lib/edged.\n"
    )


def stage(root: Path, arch: str, models: Path, tmp: Path) -> tuple[int, int]:
    venv = root / PREFIX / "venv"
    site = make_venv(venv)
    say(f"building the edged wheel and installing it with its dependencies for {arch}")
    install_site(site, build_wheel(tmp), arch)
    pruned = prune(site)
    say(f"left out {pruned / 1e6:.0f} MB the daemon never loads (tests, tools, setuptools)")
    say("compiling bytecode (the service cannot write it: /opt is read-only under it)")
    run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", str(site), str(venv / "bin")],
        stdout=subprocess.DEVNULL,
    )
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; print(sys.implementation.cache_tag)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert probe == f"cpython-{PYTHON[0]}{PYTHON[1]}", probe
    install_models(root / PREFIX / "models", models)

    share = root / PREFIX / "share"
    share.mkdir(parents=True)
    shutil.copy2(REPO / "config" / "edged.example.toml", share / "edged.example.toml")
    units = root / "lib" / "systemd" / "system"
    units.mkdir(parents=True)
    for f in sorted((REPO / "systemd").glob("*.service")):
        shutil.copy2(f, units / f.name)
    rules = root / "lib" / "udev" / "rules.d"
    rules.mkdir(parents=True)
    for f in sorted((REPO / "systemd").glob("*.rules")):
        shutil.copy2(f, rules / f.name)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "edged").symlink_to(f"/{PREFIX}/venv/bin/edged")
    doc = root / "usr" / "share" / "doc" / "edged"
    doc.mkdir(parents=True)
    for name in DOCS:
        shutil.copy2(REPO / name, doc / Path(name).name)
    (doc / "copyright").write_text(
        "edged: Apache-2.0. The Python packages in /opt/edged/venv and the models in\n"
        "/opt/edged/models keep their own licences (see each package's dist-info and\n"
        "/opt/edged/models/manifest.toml).\n"
    )
    for path in root.rglob("*"):  # reproducible modes, whatever the umask
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o755 if os.access(path, os.X_OK) and path.suffix != ".py" else 0o644)
    return du_bytes(root), pruned


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", choices=sorted(PLATFORMS), default=host_arch() or "amd64")
    ap.add_argument("--out", type=Path, default=REPO / "build", help="folder for the .deb")
    ap.add_argument(
        "--models", type=Path, default=REPO / "models" / "onnx", help="folder with the model files"
    )
    ap.add_argument("--revision", default="1", help="Debian revision (the part after '-')")
    ap.add_argument("--version", default=None, help="override the upstream version")
    ap.add_argument("--compress", choices=["xz", "gzip", "zstd", "none"], default="xz")
    ap.add_argument("--level", type=int, default=None, help="compression level")
    ap.add_argument("--keep", type=Path, default=None, help="also leave the staged tree here")
    ap.add_argument(
        "--footprint-only", action="store_true", help="stage and measure, write no package"
    )
    args = ap.parse_args(argv)

    if sys.version_info[:2] != PYTHON:
        sys.exit(
            f"build-deb: error: run this with Python {PYTHON[0]}.{PYTHON[1]}, the target's"
            f" python3 (bytecode is version-specific); this is {sys.version.split()[0]}"
        )
    if shutil.which("dpkg-deb") is None:
        sys.exit("build-deb: error: dpkg-deb not found (apt install dpkg)")
    ver = deb_version(args.version or version(), args.revision)
    manifest = tomllib.loads((REPO / "models" / "manifest.toml").read_text())
    assert manifest["model"], "models/manifest.toml lists no model"

    args.out.mkdir(parents=True, exist_ok=True)
    deb = args.out.resolve() / f"edged_{ver}_{args.arch}.deb"
    with tempfile.TemporaryDirectory(prefix="edged-deb-") as t:
        tmp = Path(t)
        root = tmp / "root"
        size, _pruned = stage(root, args.arch, args.models.resolve(), tmp)
        if args.footprint_only:
            print(footprint_line(size, None))
            return 0 if size / 1e6 < FOOTPRINT_LIMIT_MB else 1
        debian = root / "DEBIAN"
        debian.mkdir()
        kib = (size + 1023) // 1024
        (debian / "control").write_text(control(args.arch, ver, kib))
        for script in ("postinst", "prerm", "postrm"):
            shutil.copy2(REPO / "packaging" / "deb" / script, debian / script)
            (debian / script).chmod(0o755)
        cmd = ["dpkg-deb", "--root-owner-group", f"-Z{args.compress}"]
        if args.level is not None:
            cmd.append(f"-z{args.level}")
        say(f"packing {deb.name} ({args.compress})")
        run([*cmd, "--build", str(root), str(deb)], stdout=subprocess.DEVNULL)
        if args.keep is not None:
            shutil.rmtree(args.keep, ignore_errors=True)
            shutil.copytree(root, args.keep, symlinks=True)
    say(f"wrote {deb}")
    print(footprint_line(size, deb.stat().st_size))
    return 0


def footprint_line(size: int, package: int | None) -> str:
    mb = size / 1e6
    verdict = "within" if mb < FOOTPRINT_LIMIT_MB else "OVER"
    line = f"installed footprint: {mb:.0f} MB ({verdict} the {FOOTPRINT_LIMIT_MB} MB target)"
    if package is not None:
        line += f", package file {package / 1e6:.0f} MB"
    return line


if __name__ == "__main__":
    sys.exit(main())
