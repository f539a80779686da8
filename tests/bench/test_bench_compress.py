"""`bench/compress.py --quick` round-trips every coder (a Transformer checkpoint too) and prints
the table; the verdict line names the best lmcore coder and judges the target only in full."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lmcore.info.compressors import COMPRESSORS, missing

ROOT = Path(__file__).resolve().parents[2]
HEADER = ("| coder | saw training text | bits/char | bits/byte | vs xz -9 | "
          "cross-entropy bits/char | model KB | adjusted bits/char | encode kchar/s | "
          "decode kchar/s | round trip |")


def _bench():
    spec = importlib.util.spec_from_file_location("bench_compress", ROOT / "bench" / "compress.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while being built
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def transformer_dir(tmp_path):
    import torch

    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.models.checkpoint import save_model
    from lmcore.models.transformer import Transformer, TransformerConfig

    tok = train_tokenizer("char", "the quick brown fox jumps over the lazy dog.\n" * 20)
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=16, n_layer=1,
                                          n_head=2, n_embd=16))
    return save_model(tmp_path / "tiny", model, tok)


@pytest.mark.timeout(400)
def test_bench_compress_quick_round_trips_and_prints_the_table(transformer_dir):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "compress.py"), "--quick",
                           "--transformer", str(transformer_dir), "--transformer-chars", "400"],
                          capture_output=True, text=True, timeout=380, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert HEADER in out
    main, speed = out.split("Coder speed, side by side")
    table = [line for line in main.splitlines() if line.startswith("| ") and line != HEADER]
    names = [line.split(" | ")[0][2:] for line in table]
    classical = [c for c in COMPRESSORS if c not in missing()]
    models = ["KN char 3-gram", "KN char 5-gram", "adaptive over KN 5-gram",
              "online PPM (no training)", "mixing coder (KN 2/4/6, adaptive, PPM, word, match)",
              "Transformer 1x32 char, trained on the split (alone)",
              "mixing coder (KN 2/4/6, adaptive, PPM, word, match, Transformer 1x32)",
              "Transformer tiny (first 400 chars)"]
    assert names == classical + [f"{c} primed" for c in classical] + models
    for line in table:
        assert line.count("|") == HEADER.count("|") and line.endswith("| ok |"), line
    saw = {line.split(" | ")[0][2:]: line.split(" | ")[1] for line in table}
    assert {n for n, s in saw.items() if s == "no"} == set(classical) | {
        "online PPM (no training)"}
    xz = next(line for line in table if line.startswith("| xz -9 |"))
    assert xz.split(" | ")[4] == "1.000"
    # priming with the training split helps xz (its dictionary holds all of it)
    xz_primed = next(line for line in table if line.startswith("| xz -9 primed |"))
    assert float(xz_primed.split(" | ")[2]) < float(xz.split(" | ")[2])
    best = re.search(r"Best lmcore coder: (.+?) at \d+\.\d+ bits/char", out)
    assert best and best.group(1) in models
    assert "Target not judged in --quick mode" in out
    assert "beats" not in out and "Target (" not in out
    # the fast coders against the plain per-token reference, side by side, all round-tripping
    rows = [line for line in speed.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == [
        "KN char 6-gram, plain (per token)", "KN char 6-gram, table + batch",
        "Transformer 1x32, plain (window per token; first 100 chars)",
        "Transformer 1x32, lockstep streams + KV cache (default: 5 streams here)",
        "Transformer 1x32, the same with --streams 128 (a few bits more a stream)"]
    assert all(r.endswith("| ok |") for r in rows[1:])
    assert "Speed targets not judged in --quick mode" in speed
    assert rows[1].split(" | ")[4] == "1.0" and rows[3].split(" | ")[4] == "1.0"
    cells = [r.split(" | ") for r in rows[1:]]  # each ratio against its model's plain row
    for i, base in ((1, 0), (3, 2), (4, 2)):
        assert float(cells[i][4]) == pytest.approx(
            float(cells[i][2].replace(",", "")) / float(cells[base][2].replace(",", "")),
            rel=0.05, abs=0.06)


def test_verdict_counts_transformers_and_judges_the_target_on_the_whole_text():
    b = _bench()

    def row(name, size, chars=1000, xz=500, ce=2.0):
        return b.Row(name, size, chars, chars, xz, ce, 0, 1.0, 1.0, True)

    xz = b.Row("xz -9", 500, 1000, 1000, 500, None, 0, 1.0, 1.0, True)
    ngram = row("KN char 5-gram", 520)
    full_tf = row("Transformer big", 450)
    line = b.verdict([xz, ngram, full_tf], 1000, quick=False)
    assert line.startswith("Best lmcore coder: Transformer big at 3.6000 bits/char = 0.900 x")
    assert "Target (the best lmcore model beats xz -9 on the held-out 10%): met by " \
           "Transformer big" in line
    slice_tf = row("Transformer big (first 200 chars)", 80, chars=200, xz=100)
    line = b.verdict([xz, ngram, slice_tf], 1000, quick=False)
    assert line.startswith("Best lmcore coder: Transformer big (first 200 chars)")
    assert "NOT met by KN char 5-gram (1.040 x xz -9)" in line
    assert "does not test the target" in line
    line = b.verdict([xz, ngram, full_tf], 1000, quick=True)
    assert "not judged" in line and "met" not in line.split("not judged")[1]


def test_verdict_judges_the_equal_terms_target_against_zpaq_primed():
    b = _bench()
    xz = b.Row("xz -9", 500, 1000, 1000, 500, None, 0, 1.0, 1.0, True, False)
    zpaq = b.Row("zpaq -m5 primed", 150, 1000, 1000, 500, None, 0, 1.0, 1.0, True, True)
    mix = b.Row(b.MIXER, 160, 1000, 1000, 500, 1.2, 0, 1.0, 1.0, True)
    line = b.verdict([xz, zpaq, mix], 1000, quick=False)
    assert ("zpaq -m5 primed with it on the held-out 10%): NOT met: mixing coder (KN 2/4/6, "
            "adaptive, PPM, word, match) 1.2800 bits/char vs zpaq -m5 primed 1.2000") in line
    better = b.Row(b.MIXER, 140, 1000, 1000, 500, 1.1, 0, 1.0, 1.0, True)
    assert "held-out 10%): met: mixing coder" in b.verdict([xz, zpaq, better], 1000, False)


def test_speed_verdict_judges_the_default_transformer_side_by_side_and_the_ngram_absolutely():
    b = _bench()

    def table(tf_enc, tf_dec, g_enc=120.0, g_dec=80.0):
        rows = [("KN char 6-gram, plain (per token)", 20.0, 20.0, 20.0, 20.0),
                ("KN char 6-gram, table + batch", g_enc, g_dec, 20.0, 20.0),
                ("Transformer 4x128, plain (window per token; first 400 chars)", 0.3, 0.3,
                 0.3, 0.3),
                ("Transformer 4x128, lockstep streams + KV cache (default: 64 streams here)",
                 tf_enc, tf_dec, 0.3, 0.3),
                ("Transformer 4x128, the same with --streams 128", 99.0, 99.0, 0.3, 0.3)]
        return ["| coder | chars | encode kchar/s | decode kchar/s | encode x plain | "
                "decode x plain | round trip |", "|---|---|---|---|---|---|---|"] + [
            f"| {name} | 1,000 | {e:,.3f} | {d:,.3f} | {e / be:,.1f} | {d / bd:,.1f} | ok |"
            for name, e, d, be, bd in rows]

    met = b.speed_verdict(table(16.5, 15.3), quick=False)
    assert "= 55.0x / 51.0x the plain coder beside it" in met
    assert "target 50x side by side met" in met and "(50 kchar/s) met" in met
    slow = b.speed_verdict(table(16.5, 14.7, g_dec=45.0), quick=False)
    assert "target 50x side by side NOT met" in slow  # decode at 49x: the --streams row
    assert "(50 kchar/s) NOT met" in slow  # does not count, nor the n-gram's encode alone
    assert "not judged" in b.speed_verdict(table(1.0, 1.0), quick=True)
