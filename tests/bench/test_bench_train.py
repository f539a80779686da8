"""bench/train.py --quick runs and prints both tables with their columns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_train_quick_prints_tables():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "train.py"), "--quick"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "| model | params | tokens/s | ratio vs reference |" in text
    assert "| live-chart plumbing | tokens/s | ratio vs off | overhead |" in text
    rows = [line for line in text.splitlines() if line.startswith("| lmcore Transformer")]
    assert rows and rows[0].rstrip().endswith("x |")
    ratio = float(rows[0].split("|")[-2].strip().rstrip("x"))
    assert ratio > 0
