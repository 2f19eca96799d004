import tomllib
from pathlib import Path

from edged.lpr.models import EXPECTED_SHA256, REQUIRED, check_models

MANIFEST = Path(__file__).resolve().parents[2] / "models" / "manifest.toml"


def test_manifest_and_runtime_table_agree():
    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    entries, derived = manifest["model"], manifest["derived"]
    assert {e["name"]: e["sha256"] for e in [*entries, *derived]} == EXPECTED_SHA256
    assert "ch_PP-OCRv4_rec_plate.onnx" in {d["name"] for d in derived}
    made_before = {e["name"] for e in entries}
    for d in derived:  # from a wheel's file or from a derived file listed before it
        assert d["from"] in made_before, d["name"]
        made_before.add(d["name"])
        for key in (
            "recipe",
            "recipe_version",
            "onnx",
            "licence",
            "role",
            "inputs",
            "outputs",
            "preprocessing",
        ):
            assert key in d, (d["name"], key)
    for e in entries:
        for key in (
            "package",
            "version",
            "file_in_wheel",
            "licence",
            "inputs",
            "outputs",
            "preprocessing",
        ):
            assert key in e, (e["name"], key)
    assert set(REQUIRED) <= set(EXPECTED_SHA256)


def test_check_models_missing_folder(tmp_path):
    problems = check_models(tmp_path / "nope")
    assert len(problems) == 1 and "python models/fetch.py --dest" in problems[0]
    assert "/opt/edged/models" in problems[0], "the fix names where the package puts them"


def test_check_models_missing_and_wrong_files(tmp_path):
    (tmp_path / "clp_det.onnx").write_bytes(b"not a model")
    problems = check_models(tmp_path)
    assert len(problems) == 3
    assert any("clp_det.onnx" in p and "SHA-256" in p for p in problems)
    assert any("ch_PP-OCRv4_rec_plate.onnx" in p and "missing" in p for p in problems)
    assert any("ch_PP-OCRv4_det_lines.onnx" in p and "missing" in p for p in problems)
    assert all("python models/fetch.py --dest" in p for p in problems)


def test_model_sessions_share_one_arena():
    """The detector's and recogniser's working memory is held once, not once per
    model: a process reading 1080p frames peaks lower with the shared arena."""
    import os
    import subprocess
    import sys

    from tests.lpr.conftest import MODEL_DIR

    if check_models(MODEL_DIR):
        import pytest

        pytest.skip("models not fetched: run python models/fetch.py")
    probe = (
        "import sys\n"
        "from edged.lpr.config import LprConfig\n"
        "from edged.lpr.models import shared_arena\n"
        "from edged.lpr.pipeline import PlateRecognizer\n"
        "from edged.lpr.synth import render_scene\n"
        "rec = PlateRecognizer(LprConfig(model_dir=sys.argv[1]))\n"
        "opts = rec.recognizer.session.get_session_options()\n"
        "try:\n"
        "    shared = opts.get_session_config_entry('session.use_env_allocators') == '1'\n"
        "except RuntimeError:\n"  # the key is not set at all
        "    shared = False\n"
        "assert shared == shared_arena(), shared\n"
        "for i, p in enumerate(['京A12345', '沪B6789D', '粤C2468F']):\n"
        "    assert rec.read(render_scene(p, 'blue', size=(1920, 1080), seed=i))\n"
        "print(int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]))\n"
    )
    peak = {}
    for flag in ("off", "on"):
        env = {**os.environ, "EDGED_SHARED_ARENA": flag, "EDGED_LOG_LEVEL": "warning"}
        done = subprocess.run(
            [sys.executable, "-c", probe, str(MODEL_DIR)], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr[-2000:]
        peak[flag] = int(done.stdout.split()[-1])
    assert peak["off"] - peak["on"] >= 8000, peak  # kB; measured about 21 MB


def test_release_gives_the_arena_back_above_the_watermark():
    """After a passage over ``release_above_mb`` the models' free working memory leaves
    the process; under it (or with 0) nothing is done."""
    import os
    import subprocess
    import sys

    from tests.lpr.conftest import MODEL_DIR

    if check_models(MODEL_DIR):
        import pytest

        pytest.skip("models not fetched: run python models/fetch.py")
    probe = (
        "import sys\n"
        "from edged.app.memory import bound_heap\n"
        "from edged.lpr.config import LprConfig\n"
        "from edged.lpr.service import RecognizerService, resident_mb\n"
        "bound_heap()\n"  # as edged run does: freed regions leave the heap
        "from edged.lpr.synth import render_scene\n"
        "svc = RecognizerService(LprConfig(model_dir=sys.argv[1],"
        " release_above_mb=int(sys.argv[2])))\n"
        "svc.start()\n"
        "for i, p in enumerate(['京A12345', '沪B6789D', '粤C2468F']):\n"
        "    assert svc.read(render_scene(p, 'blue', size=(1920, 1080), seed=i))\n"
        "svc.read(render_scene('苏E88866', 'blue', size=(1920, 1080), seed=5,"
        " plate_width=120))\n"  # a small plate: the second pass's windows too
        "before = resident_mb()\n"
        "released = svc.release()\n"
        "print(released, before, resident_mb())\n"
    )
    out = {}
    for limit in ("0", "1", "100000"):
        done = subprocess.run(
            [sys.executable, "-c", probe, str(MODEL_DIR), limit],
            capture_output=True,
            text=True,
            env={**os.environ, "EDGED_LOG_LEVEL": "warning"},
        )
        assert done.returncode == 0, done.stderr[-2000:]
        released, before, after = done.stdout.split()[-3:]
        out[limit] = (released == "True", float(before) - float(after))
    assert out["0"] == (False, 0.0) and not out["100000"][0]
    assert out["1"][0] and out["1"][1] >= 5, out  # MB given back
