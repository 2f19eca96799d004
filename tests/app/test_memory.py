import ctypes
import subprocess
import sys


def test_heap_threshold_is_fixed_on_glibc() -> None:
    """Freed frame-sized buffers go back to the OS instead of staying in the heap."""
    try:
        ctypes.CDLL("libc.so.6").gnu_get_libc_version  # noqa: B018
    except (OSError, AttributeError):
        return  # bound_heap() is a no-op off glibc
    probe = (
        "import sys, numpy as np\n"
        "from edged.app.memory import bound_heap\n"
        "if sys.argv[1] == '1': assert bound_heap()\n"
        "def rss(): return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])\n"
        "a = np.ones(6 << 20, np.uint8); del a\n"  # first free raises glibc's threshold
        "keep = []\n"
        "for i in range(40):\n"
        "    b = np.ones((6 << 20) - i * 4096, np.uint8); keep.append(np.ones(64, np.uint8)); del b\n"
        "print(rss())\n"
    )
    out = [
        int(
            subprocess.run(
                [sys.executable, "-c", probe, flag], capture_output=True, text=True, check=True
            ).stdout
        )
        for flag in ("0", "1")
    ]
    assert out[0] - out[1] >= 3000  # kB: the freed 6 MB block no longer stays resident


def test_malloc_tuning_can_be_turned_off(monkeypatch) -> None:
    from edged.app.memory import bound_heap

    monkeypatch.setenv("EDGED_MALLOC_TUNING", "off")
    assert bound_heap() is False
