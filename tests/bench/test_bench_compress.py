"""`bench/compress.py --quick` runs, prints the table with its columns, and beats xz -9."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(150)
def test_bench_compress_quick_prints_table():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "compress.py"), "--quick"],
                          capture_output=True, text=True, timeout=140, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert ("| coder | bits/char | bits/byte | vs xz -9 | cross-entropy bits/char | model KB | "
            "adjusted bits/char | encode kchar/s | decode kchar/s | round trip |") in out
    for name in ("gzip -9", "bz2 -9", "xz -9", "zstd -19", "KN char 3-gram", "KN char 5-gram",
                 "adaptive over KN 5-gram", "online PPM (no training)"):
        assert f"| {name} |" in out
    assert "FAILED" not in out
    rows = {m.group(1): float(m.group(2))
            for m in re.finditer(r"^\| ([^|]+?) \| (\d+\.\d+) \|", out, re.M)}
    assert rows["KN char 5-gram"] < rows["KN char 3-gram"]
    assert rows["adaptive over KN 5-gram"] < rows["xz -9"]
    assert "beats xz -9" in out
