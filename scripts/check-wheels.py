#!/usr/bin/env python3
"""Which runtime dependencies have wheels for a 64-bit Pi (aarch64, CPython 3.11)?

    python scripts/check-wheels.py [--markdown]

Asks pip to download, for linux aarch64 and CPython 3.11 only, binary wheels
of every runtime dependency in setup.cfg (and what they pull in), at the
versions constraints.txt pins, plus simplejpeg (needed with picamera2, see
docs/INSTALL.md) and av (PyAV, for clips of passages: the [video] extra). Prints one row per package: version, wheel file, and
whether it is pure Python or built for the platform. A package without such
a wheel would be compiled from source on the board (slow, needs a compiler),
so it is named as such. Needs the package index; downloads into a temp folder.
"""

from __future__ import annotations

import argparse
import configparser
import re
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLATFORMS = (
    "manylinux2014_aarch64",
    "manylinux_2_17_aarch64",
    "manylinux_2_28_aarch64",
    "manylinux_2_34_aarch64",  # lgpio; Bookworm has glibc 2.36
)
EXTRA = ("simplejpeg", "av")  # simplejpeg: with picamera2 from apt; av: clips (the [video] extra)
NAME_RE = re.compile(r"^[A-Za-z0-9._-]+")


def runtime_requirements(setup_cfg: Path = REPO / "setup.cfg") -> list[str]:
    """install_requires of setup.cfg, as written there."""
    cfg = configparser.ConfigParser()
    cfg.read(setup_cfg, encoding="utf-8")
    lines = cfg.get("options", "install_requires").splitlines()
    return [line.strip() for line in lines if line.strip()]


def project_name(requirement: str) -> str:
    match = NAME_RE.match(requirement)
    return match.group(0) if match else requirement


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def classify(filename: str) -> tuple[str, str, str]:
    """(name, version, kind) of a downloaded file: pure python, aarch64 wheel or sdist."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        name, version, platform = parts[0], parts[1], parts[-1]
        kind = "pure python" if platform == "any" else "aarch64 wheel"
        return canonical(name), version, kind
    stem = re.sub(r"\.(tar\.gz|zip|tar\.bz2)$", "", filename)
    name, _, version = stem.rpartition("-")
    return canonical(name), version, "no wheel: builds from source"


def pip_download(requirements: list[str], dest: Path, deps: bool) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", str(dest)]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    cmd += ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    cmd += ["-c", str(REPO / "constraints.txt"), "--quiet"]
    if not deps:
        cmd.append("--no-deps")
    return subprocess.run([*cmd, *requirements], capture_output=True, text=True, timeout=1800)


def check(requirements: list[str]) -> list[tuple[str, str, str, str]]:
    """One row per package: (name, version, file or reason, kind)."""
    rows: dict[str, tuple[str, str, str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="edged-wheels-") as tmp:
        dest = Path(tmp)
        together = pip_download(requirements, dest, deps=True)
        if together.returncode != 0:
            # Find the ones without a wheel, one at a time; the rest still resolve.
            for req in requirements:
                alone = pip_download([req], dest, deps=True)
                if alone.returncode != 0:
                    name = canonical(project_name(req))
                    reason = alone.stderr.strip().splitlines()[-1] if alone.stderr.strip() else ""
                    rows[name] = (name, "", reason[:120], "no wheel: builds from source")
        for path in sorted(dest.iterdir()):
            name, version, kind = classify(path.name)
            rows.setdefault(name, (name, version, path.name, kind))
    return sorted(rows.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args(argv)
    requirements = [*runtime_requirements(), *EXTRA]
    rows = check(requirements)
    header = ("package", "version", "wheel", "kind")
    print(
        f"# linux aarch64, CPython 3.11, platforms {', '.join(PLATFORMS)}; "
        f"constraints.txt; checked {date.today().isoformat()}"
    )
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print(
                "| " + " | ".join(f"`{c}`" if i == 2 and c else c for i, c in enumerate(row)) + " |"
            )
    else:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    missing = [r[0] for r in rows if r[3].startswith("no wheel")]
    if missing:
        print(f"\nno aarch64 wheel for: {', '.join(missing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
