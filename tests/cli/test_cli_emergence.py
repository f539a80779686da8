"""`lmcore emergence`: each synthetic-task experiment prints its tables; bad input is one line."""

from __future__ import annotations

import csv

import pytest

from lmcore.cli import main
from lmcore.runs.store import RunStore
from lmcore.scaling.tables import parse_markdown as tables

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_addition_tables_across_sizes_and_steps(capsys, tmp_path):
    path = tmp_path / "em.csv"
    code = main(["emergence", "addition", "--digits", "2", "--shapes", "1x8,1x16", "--steps",
                 "6", "--eval-every", "3", "--quiet", "--csv", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    sizes, mid, steps = tables(out)[:3]
    assert [r["model"] for r in sizes] == ["1x8", "1x16"] and all(r["step"] == "6"
                                                                    for r in sizes)
    for r in sizes:  # the prediction is per-digit accuracy to the power k + 1
        assert float(r["exact_if_independent"]) == pytest.approx(
            float(r["token_accuracy"]) ** 3, abs=2e-3)
    assert [r["step"] for r in steps] == ["0", "3", "6"]
    assert [r["model"] for r in mid] == ["1x8", "1x16"] and mid[0]["step"] in ("0", "3", "6")
    reading = next(line for line in out.splitlines() if line.startswith("At step "))
    lo = min(float(r["token_accuracy"]) for r in mid)  # the reading quotes the mid table
    assert reading.startswith(f"At step {mid[0]['step']}, per-digit accuracy spans {lo:.2f}")
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["model"] for r in rows} == {"1x8", "1x16"}
    assert {r.status for r in RunStore().list()} == {"done"}


def test_induction_prints_phase_table_and_head_scores(capsys):
    code = main(["emergence", "induction", "--steps", "4", "--width", "16", "--heads", "2",
                 "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    phase, heads = tables(out)[:2]
    assert phase[0]["step"] == "0" and phase[-1]["step"] == "4"
    assert [r["head"] for r in heads] == ["L0H0", "L0H1", "L1H0", "L1H1"]
    assert all(0 <= float(r["score"]) <= 1 for r in heads)


def test_induction_and_fewshot_defaults_are_the_libraries():
    """The CLI spells InductionConfig's defaults out (importing it would load torch at start)."""
    import argparse

    from lmcore.cli.emergence import register
    from lmcore.scaling.induction import InductionConfig

    ap = argparse.ArgumentParser()
    register(ap.add_subparsers())
    args = ap.parse_args(["emergence", "induction"])
    cfg = InductionConfig()
    assert (args.steps, args.layers, args.width, args.heads, args.lr) == (
        cfg.steps, cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.lr)
    from lmcore.scaling.fewshot import FewShotConfig

    args = ap.parse_args(["emergence", "fewshot"])
    fs = FewShotConfig()
    assert (args.steps, args.layers, args.width, args.lr) == (fs.steps, fs.n_layer, fs.n_embd,
                                                              fs.lr)


def test_fewshot_and_cot_tables(capsys):
    assert main(["emergence", "fewshot", "--steps", "3", "--width", "16", "--quiet"]) == 0
    out = capsys.readouterr().out
    shots = tables(out)[0]
    assert [r["shots"] for r in shots] == [str(k) for k in range(9)]
    assert float(shots[-1]["perfect learner"]) == 1.0
    mean = sum(float(r[next(c for c in r if c.startswith("after "))]) for r in shots) / 9
    assert f"Mean accuracy over k = 0..8: {mean:.2f}, against 0.55" in out  # read from the table
    assert main(["emergence", "cot", "--steps", "3", "--width", "16", "--quiet"]) == 0
    out = capsys.readouterr().out
    by_len = tables(out)[0]
    assert [r["digits"] for r in by_len] == ["1", "2", "3", "4", "5", "6"]
    assert float(by_len[-1]["share of training"]) == 0  # longer than any training problem
    assert "exact: answer only" in by_len[0] and "exact: scratchpad" in by_len[0]
    assert "example (scratchpad):" in out
    unsolved = [r["digits"] for r in by_len  # after 3 steps most lengths are unsolved
                if max(float(r["exact: answer only"]), float(r["exact: scratchpad"])) < 0.05]
    if unsolved:  # the reading names them and their share of training, from the table
        assert f"Neither solves {unsolved[0]}" in out and "of the training problems." in out


@pytest.mark.parametrize(("args", "message"), [
    (["addition", "--shapes", "x"], "LAYERSxWIDTH"),
    (["addition", "--digits", "0"], "--digits must be positive"),
    (["induction", "--width", "30", "--heads", "4"], "multiple of 4 heads"),
    (["cot", "--lr", "nan"], "--lr must be positive"),
])
def test_bad_input_is_one_line_exit_2(capsys, args, message):
    code = main(["emergence", *args, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
