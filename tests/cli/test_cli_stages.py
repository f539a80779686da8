"""`lmcore sft` and `lmcore dpo`: their tables, the saved runs, and one-line refusals."""

from __future__ import annotations

import re

import pytest

from lmcore.cli import main
from lmcore.runs.store import RunStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rows(out: str) -> list[list[str]]:
    return [[c.strip() for c in ln.strip("|").split("|")]
            for ln in out.splitlines() if ln.startswith("|") and "---" not in ln]


def test_sft_prints_before_and_after_and_records_two_stages(capsys):
    assert main(["sft", "--pretrain-steps", "2", "--steps", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert rows[0][:2] == ["stage", "reverse"] and rows[0][-1] == "all"
    assert rows[1][0] == "before SFT (pretrain)" and rows[2][0] == "after SFT"
    assert all(re.fullmatch(r"\d+\.\d%", c) for c in rows[1][1:] + rows[2][1:])
    runs = {r.config["stage"]: r for r in RunStore().list()}
    assert set(runs) == {"pretrain", "sft"}
    assert runs["sft"].config["from_run"] == runs["pretrain"].id
    assert f"(run {runs['sft'].id})" in out
    # DPO refuses to start from the pretrained model: one line, exit 2, nothing recorded
    assert main(["dpo", "--from", runs["pretrain"].id, "--steps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("lmcore: error: DPO starts from a sft or dpo model; this one is pretrain")
    assert len(RunStore().list()) == 2


@pytest.mark.parametrize("argv, says", [
    (["dpo", "--from", "no-such-run"], "neither a checkpoint folder nor a recorded run"),
    (["dpo", "--from", "x", "--beta", "0"], "beta must be a positive number"),
    (["dpo", "--from", "x", "--nll-weight", "-1"], "nll_weight must be a number >= 0"),
    (["sft", "--steps", "0"], "steps must be at least 1"),
    (["sft", "--lr", "nan"], "learning rate must be a positive number"),
    (["sft", "--pretrain-steps", "0"], "--pretrain-steps must be at least 1"),
    (["sft", "--eval-every", "-1"], "--eval-every must be >= 0"),
])
def test_bad_arguments_are_one_line_and_record_nothing(capsys, argv, says):
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err
    assert RunStore().list() == []
