"""bench/ddp.py --quick runs 1 and 2 ranks and prints its table (kept working in CI)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_quick_bench_prints_both_rank_counts():
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "ddp.py"), "--quick"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [ln for ln in r.stdout.splitlines() if re.match(r"\| [12] \|", ln)]
    assert len(rows) == 2
    assert rows[0].startswith("| 1 | 1 |") and "1.00x" in rows[0]
    eff = float(rows[1].split("|")[5].strip().rstrip("%"))
    assert eff > 0
    assert "What limits it here" in r.stdout
