"""`bench/ngram.py --quick` prints both Markdown tables, never builds lmplz, and, when lmplz
is built in the bench cache, shows its ARPA rescored by lmcore equal to lmcore's model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LMPLZ = ROOT / ".bench-cache" / "kenlm" / "bin" / "lmplz"


def _quick(cache: Path | None = None) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if cache is not None:
        env["LMCORE_BENCH_CACHE"] = str(cache)
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "ngram.py"), "--quick"],
                          capture_output=True, text=True, timeout=110, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.timeout(120)
def test_bench_ngram_quick_prints_tables_and_never_builds_lmplz(kenlm_dir, tmp_path):
    out = _quick(cache=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # --quick did not start a build
    assert "lmplz: not built (no binary at " in out and "--quick never builds it" in out
    assert ("| order | model | fit s | lmplz fit s | score s | tokens/s scored | perplexity | "
            "ppl excl. OOV | fit × (NLTK/lmcore) | score × (NLTK/lmcore) |") in out
    for model in ("lmcore KN", "lmcore Laplace", "NLTK KN", "NLTK Laplace"):
        assert out.count(f"| {model} |") == 2  # orders 2 and 3
    assert "Cross-check against KenLM" not in out
    assert "| corpus | tokens | order | n-grams stored | fit s | peak RSS of fit MB |" in out
    assert "Order-5 Kneser-Ney on 100,000 tokens" in out
    million = re.findall(r"^\| [^|]+ \| (100,0\d\d) \| 5 \| ([\d,]+) \| ([\d.]+) \|", out, re.M)
    assert len(million) == 2  # two 100k-token corpora at order 5, not one million in --quick
    assert all(int(n.replace(",", "")) > 100_000 for _, n, _ in million)
    assert "Targets: scoring at least 100x faster" in out


@pytest.mark.timeout(120)
@pytest.mark.skipif(not LMPLZ.is_file(), reason="lmplz not built (make bench-kenlm)")
def test_bench_ngram_quick_cross_checks_lmplz_when_built(kenlm_dir):
    out = _quick()
    assert f"lmplz: {LMPLZ}" in out
    rows = re.findall(r"^\| ([23]) \| lmcore KN \| [\d.]+ \| ([\d.]+) \|", out, re.M)
    assert [o for o, _ in rows] == ["2", "3"] and all(float(t) > 0 for _, t in rows)
    check = re.findall(r"^\| ([23]) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| ([\d.]+) \| ([\d.]+) \| "
                       r"[\d.e+-]+ \| (\d+), (\d+) \| (\w+) \|$", out, re.M)
    assert [c[0] for c in check] == ["2", "3"]
    for _, ours, theirs, oov_a, oov_b, same in check:
        assert same == "yes" and oov_a == oov_b
        assert float(theirs) == pytest.approx(float(ours), rel=1e-4)
    assert "gives lmcore's perplexity at every order" in out
