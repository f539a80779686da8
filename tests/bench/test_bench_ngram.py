"""`bench/ngram.py --quick` runs and prints both Markdown tables with their columns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_bench_ngram_quick_prints_tables(kenlm_dir):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "ngram.py"), "--quick"],
                          capture_output=True, text=True, timeout=110, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert ("| order | model | fit s | score s | tokens/s scored | perplexity | ppl excl. OOV | "
            "fit × (NLTK/lmcore) | score × (NLTK/lmcore) |") in out
    for model in ("lmcore KN", "lmcore Laplace", "NLTK KN", "NLTK Laplace"):
        assert out.count(f"| {model} |") == 2  # orders 2 and 3
    assert "| corpus | tokens | order | n-grams stored | fit s | peak RSS of fit MB |" in out
    assert out.count("| 1,000,0") == 2  # two one-million-token corpora at order 5
    assert "Targets: scoring at least 100x faster" in out
