"""bench/attention.py --quick runs in a subprocess and prints its tables with the right columns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_bench_attention_quick_prints_tables():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "attention.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for title in (
        "Forward time",
        "Forward+backward time",
        "Forward peak memory",
        "Forward+backward peak memory",
        "Tiled growth per doubling of T",
    ):
        assert f"### {title}" in out
    assert out.count("| T | sdpa ms | tiled ms | naive ms | tiled/sdpa | naive/sdpa |") == 2
    assert out.count("| T | sdpa MiB | tiled MiB | naive MiB | tiled/sdpa | naive/sdpa |") == 2
    rows = [line for line in out.splitlines() if line.startswith(("| 256 |", "| 512 |"))]
    assert len(rows) == 8
    for row in rows:  # every cell measured: numbers, positive
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(float(c) > 0 for c in cells[1:]), row
