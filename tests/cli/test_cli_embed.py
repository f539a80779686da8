"""`lmcore embed`: word2vec neighbours and analogies; with a checkpoint, the token table's
neighbours and contextual cosines; bad input is one line, exit 2."""

from __future__ import annotations

import pytest
import torch

from lmcore.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = ("the king rules the land. the queen rules the land. a man walks. a woman walks. "
        "the king is a man. the queen is a woman. the bank of the river. money in the bank. ")


@pytest.fixture
def text_file(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text(TEXT * 80, encoding="utf-8")
    return f


@pytest.fixture
def checkpoint(tmp_path, text_file):
    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.models.checkpoint import save_model
    from lmcore.models.transformer import Transformer, TransformerConfig

    tok = train_tokenizer("word", TEXT * 80)
    torch.manual_seed(0)
    net = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=32, n_layer=1,
                                        n_head=2, n_embd=16))
    return save_model(tmp_path / "ckpt", net, tok)


def test_neighbours_and_analogy(capsys, text_file):
    assert main(["embed", "--corpus", str(text_file), "--words", "king,queen", "--k", "3",
                 "--analogy", "king,man,woman", "--epochs", "2", "--dim", "16"]) == 0
    out = capsys.readouterr().out
    assert "word2vec (word units)" in out
    assert "| king |" in out and "king - man + woman" in out


def test_token_table_and_contextual(capsys, text_file, checkpoint):
    assert main(["embed", "--corpus", str(text_file), "--words", "bank", "--k", "3",
                 "--epochs", "1", "--dim", "16", "--model", str(checkpoint),
                 "--contextual", "bank"]) == 0
    out = capsys.readouterr().out
    assert "shared of 3" in out
    assert "of token-table rows 1.0000" in out


@pytest.mark.parametrize("argv, msg", [
    (["embed", "--contextual", "x"], "--contextual needs --model"),
    (["embed", "--k", "0"], "at least 1"),
    (["embed", "--corpus", "/nonexistent.txt"], "no such file"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, msg):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1
