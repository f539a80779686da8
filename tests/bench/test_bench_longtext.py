"""bench/longtext.py --quick runs in a subprocess and prints both tables with sound numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _rows(out: str, header: str) -> list[list[str]]:
    lines = out.splitlines()
    start = lines.index(header) + 2  # skip the |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


@pytest.mark.timeout(300)
def test_bench_longtext_quick_prints_tables():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "longtext.py"), "--quick"],
                          capture_output=True, text=True, timeout=290, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    header = ("| strategy | attention | window | stride | windows | tokens scored | bits/char | "
              "time ms | time vs full tiled | peak MiB | peak vs full tiled |")
    rows = _rows(out, header)
    assert [(r[0], r[1]) for r in rows] == [
        ("truncation", "tiled"), ("disjoint", "tiled"), ("sliding", "tiled"),
        ("sliding", "tiled"), ("full", "tiled"), ("full", "sdpa"), ("full", "naive")]
    by = {(r[0], r[1], r[3]): r for r in rows}
    T = int(by[("full", "tiled", "-")][5])
    assert int(by[("truncation", "tiled", "-")][5]) == int(rows[0][2]) < T
    assert all(int(r[5]) == T for r in rows[1:])  # every other strategy scores every token
    bpc = [float(r[6]) for r in rows]
    assert all(0 < b < 10 for b in bpc)
    full = [float(r[6]) for r in rows if r[0] == "full"]
    assert max(full) - min(full) < 1e-3  # tiled, sdpa and naive agree
    assert by[("full", "tiled", "-")][8] == "1.00x" and by[("full", "tiled", "-")][10] == "1.00x"
    sweep = _rows(out, "| stride | context per token (min) | windows | bits/char | "
                       "bits/char vs disjoint | time vs disjoint |")
    assert len(sweep) >= 3 and sweep[0][4] == "+0.0000"
    assert [int(r[0]) for r in sweep] == sorted((int(r[0]) for r in sweep), reverse=True)
