"""`lmcore attention shapes|io`: the shapes table and checks; the byte counts; bad input."""

from __future__ import annotations

import pytest

from lmcore.cli import main
from lmcore.models.attention_io import attention_io


def test_shapes(capsys):
    assert main(["attention", "shapes", "the cat sat", "a dog"]) == 0
    out = capsys.readouterr().out
    assert "| scores | Q Kᵀ / √d | (2, 4, 11, 11) |" in out
    assert "lengths [11, 5], padded to T = 11" in out
    alone = float(out.split("at real positions: ")[1].split()[0])
    layer = float(out.split("the layer's forward|: ")[1].split()[0])
    assert alone < 1e-9 and layer < 1e-9


def test_io(capsys):
    assert main(["attention", "io", "--T", "1024,4096", "--block", "64x128"]) == 0
    out = capsys.readouterr().out
    ratio = attention_io(4096, 64, 64, 128, True, 2).ratio
    assert "| 4096 |" in out and f"{ratio:.4f}" in out


@pytest.mark.parametrize("argv, msg", [
    (["attention", "io", "--block", "64"], "--block ROWSxCOLS"),
    (["attention", "io", "--T", "0"], "T must be at least 1"),
    (["attention", "shapes", " "], "at least one sentence"),
])
def test_bad_input(capsys, argv, msg):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1
