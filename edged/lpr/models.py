"""Which model files the recogniser needs and whether the installed ones are right.

The daemon refuses to start on a missing or altered model rather than read
plates badly; every problem names the file and the command that fixes it.
The hashes here must agree with ``models/manifest.toml`` (a test checks it):
the manifest travels with the set-up script, this table with the daemon.

The default recogniser, ``ch_PP-OCRv4_rec_plate.onnx``, is not downloaded
but derived at set-up (``models/fetch.py`` runs ``models/derive.py``) from
``ch_PP-OCRv4_rec_infer.onnx``: the same network with its spelt-out
HardSwish and scalar affine ops folded, which ONNX Runtime does not do
itself. Its output is the same (within ~1e-6) and it runs about a fifth
faster, which matters on a Pi's CPU. Its hash is checked like the others;
the shipped file still works (``[lpr] recognizer_model``). The text-line
fallback's detector, ``ch_PP-OCRv4_det_lines.onnx``, is derived the same way
from ``ch_PP-OCRv4_det_infer.onnx`` (same output, a seventh to a fifth faster,
4 to 8 MB less resident memory, as ``bench/lpr_bench.py`` prints; ``[lpr] text_line_model`` takes the shipped file too).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

EXPECTED_SHA256: dict[str, str] = {
    "clp_det.onnx": "1bb07d364ba3b1cca8c27176d3ea6b5997b6264dea8c9304e092c618b112d5f0",
    "ch_PP-OCRv4_rec_infer.onnx": (
        "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"
    ),
    "clp_v2_c_rec.onnx": "90f2f875b2be2efbd360f0ea959a9d15e5d79067f53133ba656f5bb475633d0d",
    "clp_dict.txt": "af47672f9f7fdff757a9db744c9015b94fb92f129140c1fc0198e65949da9824",
    "ch_PP-OCRv4_det_infer.onnx": (
        "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"
    ),
    # derived at set-up from ch_PP-OCRv4_rec_infer.onnx ([[derived]] in the manifest)
    "ch_PP-OCRv4_rec_plate.onnx": (
        "8b4385c890a2fbc04a8782257bd24db223bc33774b18039fddc22428a1577136"
    ),
    # derived at set-up from ch_PP-OCRv4_det_infer.onnx, the text-line fallback's detector
    "ch_PP-OCRv4_det_lines.onnx": (
        "43c59bfbeed700746de028e3eba02ff32bc7e0d6476393603c412ecd97d42bf2"
    ),
    # INT8 variants, quantised at set-up (models/quantize.py); measured, not adopted
    "clp_det_int8.onnx": "9c49a354ed9ca28a7cad0ed48faaebdc0633e43305779cce8623eec380c28e33",
    "ch_PP-OCRv4_rec_plate_int8.onnx": (
        "2215b796637ebcd26929996c862362875c71471e321730eabf16a5e5fbe394ba"
    ),
}

REQUIRED = ("clp_det.onnx", "ch_PP-OCRv4_rec_plate.onnx", "ch_PP-OCRv4_det_lines.onnx")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_models(model_dir: str | Path, names: tuple[str, ...] | list[str] = REQUIRED) -> list[str]:
    """Return one line per problem with the model files (empty list: all good)."""
    folder = Path(model_dir)
    fix = (
        "check lpr.model_dir; the package installs the models in /opt/edged/models"
        " (sudo apt install --reinstall edged), a clone fetches them with"
        f" python models/fetch.py --dest {folder}"
    )
    problems: list[str] = []
    if not folder.is_dir():
        return [f"model folder {folder} does not exist; {fix}"]
    for name in names:
        path = folder / name
        expected = EXPECTED_SHA256.get(name)
        if not path.is_file():
            problems.append(f"model file {path} is missing; {fix}")
        elif expected is None:
            problems.append(
                f"model file {name} is not a known model (no hash to check it against); "
                "use one listed in models/manifest.toml"
            )
        else:
            got = file_sha256(path)
            if got != expected:
                problems.append(
                    f"model file {path} has SHA-256 {got[:16]}..., expected "
                    f"{expected[:16]}... (damaged or a different model); {fix}"
                )
    return problems


#: ONNX Runtime's arena extend strategy that grows by what a run asks for, not by
#: doubling (``kNextPowerOfTwo`` would keep up to twice the working memory resident).
SAME_AS_REQUESTED = 1

_arena_lock = threading.Lock()
_arena_registered: bool | None = None


def shared_arena() -> bool:
    """One ONNX Runtime arena for every model session of the process, registered once.

    Each session's own arena keeps the peak working memory of its model for
    good: the detector's and the recogniser's together, though they never
    run at the same instant on a lane. One shared arena keeps only the larger
    of the two, and growing it by what a run asks for rather than by doubling
    keeps less slack. Measured with the daemon, a 1080p folder camera and 40
    passages (``bench/daemon_rss_bench.py``): peak RSS 193 MB instead of 205,
    steady 175 instead of 188. ``EDGED_SHARED_ARENA=off`` gives each session
    its own arena again (the bench's comparison). The arena is thread-safe,
    so lanes reading at once share it too.
    """
    global _arena_registered
    with _arena_lock:
        if _arena_registered is None:
            _arena_registered = False
            if os.environ.get("EDGED_SHARED_ARENA") != "off":
                import onnxruntime as ort

                info = ort.OrtMemoryInfo(
                    "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
                )
                # max memory 0 = no cap; -1 = ONNX Runtime's defaults
                ort.create_and_register_allocator(
                    info, ort.OrtArenaCfg(0, SAME_AS_REQUESTED, -1, -1)
                )
                _arena_registered = True
        return _arena_registered


def shrink_options() -> Any:
    """Run options that free the arena's unused regions at the end of the run."""
    import onnxruntime as ort

    opts = ort.RunOptions()
    opts.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return opts


def open_session(path: str | Path, threads: int, arena: bool = True) -> Any:
    """An ONNX Runtime session on the CPU with ``threads`` intra-op threads.

    An arena stays on: it keeps the working memory of the largest input seen
    and reuses it. Without it every run's buffers go through malloc, whose
    heap fragments and grows with the varying input sizes (measured over 60
    dev scenes at 1080p: about 300 MB instead of 190). The arena is the
    process's shared one (:func:`shared_arena`) where it is on.
    ``arena=False`` is for a model that runs rarely (the text-line fallback): its
    working memory is freed after each run instead of kept for the next.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.enable_cpu_mem_arena = arena
    if arena and shared_arena():
        opts.add_session_config_entry("session.use_env_allocators", "1")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
