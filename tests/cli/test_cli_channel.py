"""`lmcore channel`: capacity, codes and decode tables; bad input is one line, exit 2."""

from __future__ import annotations

import pytest

from lmcore.cli import main


def _table(out: str) -> list[dict[str, str]]:
    lines = [ln for ln in out.splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(head, (c.strip() for c in ln.strip("|").split("|")), strict=True))
            for ln in lines[2:]]


@pytest.fixture
def text_file(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("the cat sat on the mat. the dog sat on the log.\n" * 200, encoding="utf-8")
    return f


def test_capacity_table_agrees_with_the_formula(capsys):
    assert main(["channel", "capacity", "--p", "0.11,0.3", "--bits", "50000"]) == 0
    rows = _table(capsys.readouterr().out)
    assert [r["channel"] for r in rows] == ["BSC(p = 0.11)", "BSC(p = 0.3)"]
    for r in rows:
        assert abs(float(r["I(X;Y) measured"]) - float(r["capacity (formula)"])) \
            < 2 * float(r["± 2 s.e."]) + 1e-3


def test_codes_table_on_a_file(capsys, text_file):
    assert main(["channel", "codes", "--corpus", str(text_file), "--chars", "300",
                 "--codes", "uncoded,hamming74,rep5", "--channel", "bec", "--p", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "BEC(e = 0.2): capacity 0.8000" in out
    rows = {r["code"]: r for r in _table(out)}
    assert rows["uncoded"]["message bits"] == "2400"
    assert float(rows["repetition (5, 1)"]["BER"]) < float(rows["uncoded"]["BER"])


def test_decode_table(capsys, text_file):
    assert main(["channel", "decode", "--corpus", str(text_file), "--chars", "200",
                 "--orders", "1,4", "--error-rate", "0.08"]) == 0
    rows = {r["n"]: r for r in _table(capsys.readouterr().out)}
    assert float(rows["4"]["CER after"]) < float(rows["4"]["CER before"])


@pytest.mark.parametrize("argv, msg", [
    (["channel", "capacity", "--p", "0.7"], "error rate must lie in [0, 0.5]"),
    (["channel", "capacity", "--p", "x"], "comma-separated numbers"),
    (["channel", "codes", "--codes", "turbo"], "unknown code 'turbo'"),
    (["channel", "codes", "--chars", "0"], "--chars: must be at least 1"),
    (["channel", "decode", "--orders", "9"], "orders from 1 to 6"),
    (["channel", "decode", "--error-rate", "0"], "--error-rate: must be above 0"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, msg):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1
