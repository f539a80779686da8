"""`lmcore scaling`: sweeps print their points and fits as Markdown, CSV on request."""

from __future__ import annotations

import csv

import pytest

from lmcore.cli import main
from lmcore.runs.store import RunStore
from lmcore.scaling.tables import parse_markdown as tables

TINY = ["--context", "16", "--batch-size", "4", "--eval-tokens", "64", "--bootstrap", "10",
        "--quiet"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def text_file(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("the cat sat on the mat.\nthe dog sat on the log.\n" * 60, encoding="utf-8")
    return f


def test_sizes_sweep_prints_points_and_both_fits(capsys, text_file, tmp_path):
    csv_path = tmp_path / "points.csv"
    code = main(["scaling", "sizes", "--corpus", str(text_file), "--shapes", "1x8,1x16,2x16",
                 "--steps", "3", *TINY, "--csv", str(csv_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    points, fits = tables(out)[:2]
    assert [r["label"] for r in points] == ["1x8", "1x16", "2x16"]
    n = [int(r["non_embedding"].replace(",", "")) for r in points]
    assert n == sorted(n) and n[0] < n[1] < n[2]
    assert all(float(r["bits_per_char"]) > 0 for r in points)
    assert all(r["steps"] == "3" and r["tokens"] == str(3 * 4 * 16) for r in points)
    assert "Kaplan" in fits[0]["form"] and "Hoffmann" in fits[1]["form"]
    assert "Kaplan et al. 2020's 0.076" in out and "Hoffmann et al. 2022's 0.34" in out
    assert "torch threads: 1" in out
    with csv_path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == ["1x8", "1x16", "2x16"]
    assert float(rows[2]["flops"]) > float(rows[0]["flops"])
    runs = RunStore().list()
    assert len(runs) == 3 and all(r.status == "done" for r in runs)
    assert {r.final["non_embedding"] for r in runs} == set(n)


def test_budget_sweep_is_loss_against_tokens(capsys, text_file):
    code = main(["scaling", "budgets", "--corpus", str(text_file), "--shape", "1x16",
                 "--steps", "2,4,8", *TINY])
    out, err = capsys.readouterr()
    assert code == 0, err
    points = tables(out)[0]
    assert [int(r["tokens"]) for r in points] == [2 * 64, 4 * 64, 8 * 64]
    assert "L = E + A / D^α" in out


def test_isoflop_sweep_gives_each_shape_the_steps_of_its_budget(capsys, text_file):
    code = main(["scaling", "isoflop", "--corpus", str(text_file), "--shapes", "1x8,1x16,2x16",
                 "--budgets", "1e8,2e8", *TINY])
    out, err = capsys.readouterr()
    assert code == 0, err
    points, optima = tables(out)[:2]
    for r in points:  # every run spent its budget to within one step
        flops, budget = float(r["flops"]), float(r["budget"])
        per_step = flops / int(r["steps"])
        assert abs(flops - budget) <= per_step / 2 + 1
    assert len(optima) == 2 and "Compute-optimal frontier: N_opt ∝ C^" in out


@pytest.mark.parametrize(("args", "message"), [
    (["sizes", "--shapes", "2x"], "LAYERSxWIDTH"),
    (["sizes", "--shapes", "1x10x3"], "not a multiple of 3 heads"),
    (["budgets", "--steps", "10,abc"], "whole numbers"),
    (["isoflop", "--budgets", "-1"], "positive"),
    (["sizes", "--lr", "0"], "--lr: must be above 0"),
])
def test_bad_input_is_one_line_exit_2(capsys, args, message):
    code = main(["scaling", *args, "--quiet"])
    out, err = capsys.readouterr()
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
