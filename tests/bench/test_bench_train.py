"""bench/train.py --quick runs and prints its tables, the page's recorder in the plumbing arm."""

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
    assert any(line.startswith("| on (job registry, SQLite recorder,") for line in
               text.splitlines())
    targets = {line.split("|")[1].strip(): line.split("|")[2:4] for line in text.splitlines()
               if line.startswith("| lmcore tokens/s >= ") or line.startswith("| live-chart")
               and "costs" in line}
    assert set(targets) == {"lmcore tokens/s >= 1.0x the reference",
                            "live-chart plumbing costs < 5%"}
    measured, met = targets["lmcore tokens/s >= 1.0x the reference"]
    measured = float(measured.strip().rstrip("x"))  # 3 decimals: the verdict's own number
    assert abs(measured - ratio) <= 0.005 + 1e-9
    assert met.strip().startswith("yes" if measured >= 1.0 else "no")
