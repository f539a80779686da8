"""`lmcore objectives`: the three objectives on one budget, the fair table as Markdown/CSV/JSON."""

from __future__ import annotations

import csv
import json

import pytest

from lmcore.cli import main
from lmcore.runs.store import RunStore

TINY = ["--layers", "1", "--heads", "2", "--width", "16", "--context", "16",
        "--batch-size", "4", "--steps", "2", "--eval-tokens", "64", "--quiet"]


# One intra-op thread: on a busy shared machine two OpenMP threads stall for whole slices.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def text_file(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("the cat sat on the mat.\nthe dog sat on the log.\n" * 60, encoding="utf-8")
    return f


def _table(out: str) -> list[dict[str, str]]:
    """The Markdown table printed on stdout, as dicts of cell strings."""
    lines = [ln for ln in out.splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "")) == {"-"}
    return [dict(zip(head, (c.strip() for c in ln.strip("|").split("|")), strict=True))
            for ln in lines[2:]]


def test_prints_the_fair_table_and_writes_csv_and_json(capsys, text_file, tmp_path):
    csv_path, json_path = tmp_path / "fair.csv", tmp_path / "fair.json"
    code = main(["objectives", "--corpus", str(text_file), *TINY, "--nsp",
                 "--csv", str(csv_path), "--json", str(json_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = _table(out)
    assert [(r["model"], r["scored"]) for r in rows] == [
        ("causal", "suffix (same positions)"), ("causal", "full sequence"),
        ("prefix", "suffix (same positions)"), ("masked", "pseudo-log-likelihood [pseudo]"),
        ("masked", "masked tokens at 15%"), ("masked", "next-sentence prediction (4 held-out "
                                                      "pairs)")]
    causal, full, prefix, pll, mlm, nsp = rows
    assert causal["tokens"] == prefix["tokens"] and causal["characters"] == prefix["characters"]
    assert full["tokens"] == "64" and float(full["bits/char"]) > 0
    assert pll["bits/token"] == "–" and float(pll["pseudo-perplexity"]) > 1
    assert mlm["bits/char"] == "–" and mlm["per-token perplexity"] == "–"
    assert float(mlm["masked-token perplexity"]) > 1 and 0 <= float(mlm["accuracy"]) <= 1
    assert 0 <= float(nsp["accuracy"]) <= 1 and "[pseudo]: Pseudo-log-likelihood" in out

    with csv_path.open(encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert [r["scored"] for r in table] == [r["scored"] for r in rows]
    assert float(table[1]["bits/char"]) == pytest.approx(float(full["bits/char"]), abs=1e-4)
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    assert doc["nsp"] and doc["model"]["n_embd"] == 16 and doc["train"]["steps"] == 2
    assert [m["scored"] for m in doc["metrics"]] == [r["scored"] for r in rows]
    assert doc["metrics"][4]["bits/char"] is None  # not applicable is null, never NaN

    runs = RunStore().list()  # one recorded run per objective, with its fair rows
    assert sorted(r.name.split()[1] for r in runs) == ["causal", "masked", "prefix"]
    assert all(r.status == "done" and r.final["fair_metrics"] for r in runs)


def test_same_seed_same_table(capsys, text_file):
    outs = []
    for _ in range(2):
        assert main(["objectives", "--corpus", str(text_file), *TINY, "--seed", "3"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and _table(outs[0])


@pytest.mark.parametrize("args,needle", [
    (["--corpus", "/nonexistent.txt"], "no such file"),
    (["--heads", "3"], "multiple of n_head"),
    (["--rate", "0"], "--rate: must be above 0, got 0"),
    (["--steps", "0"], "--steps: must be at least 1, got 0"),
    (["--context", "900"], "smaller context"),
    (["--csv", "/"], "is a folder"),
    (["--json", "/no/such/folder/x.json"], "does not exist"),
])
def test_bad_input_is_one_line_exit_2(capsys, text_file, args, needle):
    code = main(["objectives", "--corpus", str(text_file), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("lmcore: error: ")
    assert RunStore().list() == []  # refused before any run was recorded


def test_encdec_joins_the_fair_table(capsys, text_file):
    assert main(["objectives", "--corpus", str(text_file), *TINY, "--encdec"]) == 0
    rows = _table(capsys.readouterr().out)
    enc = [r for r in rows if r["model"] == "encdec"]
    assert [r["scored"] for r in enc] == ["suffix (same positions)", "full sequence",
                                          "infilled spans at 15%"]
    suffix = {r["model"]: r["tokens"] for r in rows if r["scored"] == "suffix (same positions)"}
    assert suffix["encdec"] == suffix["causal"] == suffix["prefix"]
    assert float(enc[0]["bits/char"]) > 0
