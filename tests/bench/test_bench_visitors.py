"""bench/visitors.py --quick: one visitor's whole flow against the hosted server, in Chromium;
the tables print, the flow finishes with no error and no cross-talk, and its tab's jobs end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"),
                    reason="no Chromium at /usr/bin/chromium; .ci/run installs it")
def test_bench_visitors_quick():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "visitors.py"), "--quick"],
                         capture_output=True, text=True, timeout=1200, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    rows = [ln for ln in lines if ln.startswith("| 1 |")]
    assert len(rows) == 4, out.stdout  # summary, while jobs run / arrival, per page, targets
    cells = [c.strip() for c in rows[0].split("|")[1:-1]]
    jobs, errors, cross, alive = cells[2], cells[4], cells[5], cells[-1]
    # the upload, the n-gram fit and the training always finish; the long-text and compression
    # steps are listed as errors when their page refuses them (the table says which)
    assert int(jobs.split()[0]) >= 2, out.stdout
    assert errors.endswith("(0)") and cross == "0", out.stdout  # no server traceback
    assert alive == "0 / 0", out.stdout
    arrival = [c.strip() for c in rows[1].split("|")[1:-1]]
    # the visitor's first page was timed, and the arrival window's CPU split was measured
    assert arrival[3] != "–" and float(arrival[4]) > 0 and float(arrival[5]) > 0, rows[1]
    per_page = [c.strip() for c in rows[2].split("|")[2:-1]]
    assert all(c != "–" for c in per_page[:4]), rows[2]  # Home .. Transformer opened, timed
