"""bench/app_jobs.py --quick runs end to end with Chromium attached and prints its tables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.browser


def test_bench_app_jobs_quick_prints_tables():
    if not os.path.exists(shutil.which("chromium") or "/usr/bin/chromium"):
        pytest.skip("no Chromium at /usr/bin/chromium (.ci/run installs it)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "app_jobs.py"), "--quick"],
                         capture_output=True, text=True, timeout=1800, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "| arm | tokens/s | ratio vs (c) | training s | wall s (click to done) |" in text
    assert "| arm | measured kernel s (sum over cells) | speed vs (c) | cells | wall s |" in text
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()
            if line.startswith("| (")}
    for arm in ("(a) page open in Chromium", "(b) browser on another page",
                "(c) plain Python, run_here, no server", "(d) plain Python, JobRegistry worker"):
        assert arm in rows, text
    c_row = [r for r in text.splitlines() if r.startswith("| (c) plain Python")][0]
    assert " 1.000x " in c_row  # the baseline's own ratio
    # one round: each paired ratio is the table's own ratio
    per_round = [line for line in text.splitlines() if line.startswith("Per round against (c)")]
    assert len(per_round) == 2, text
    a_rows = [r for r in text.splitlines() if r.startswith("| (a) page open")]  # training, sweep
    for line, table_row in zip(per_round, a_rows, strict=True):
        table_ratio = next(c.strip() for c in table_row.split("|") if c.strip().endswith("x"))
        assert line.split("(a) ")[1].split(" ")[0] == table_ratio[:-1], (line, table_row)
    verdicts = [line for line in text.splitlines() if line.startswith("| training, page open")
                or line.startswith("| sweep, page open") or line.startswith("| page's estimate")]
    assert len(verdicts) == 3 and all("--quick" in v for v in verdicts)
