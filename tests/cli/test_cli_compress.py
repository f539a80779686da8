"""`lmcore compress/decompress`: byte-exact round trips with n-gram and Transformer folders."""

from __future__ import annotations

import re

import pytest

from lmcore.cli import main

TRAIN = "the cat sat on the mat.\nthe dog sat on the log.\n" * 30
TEXT = "the cat sat on the dog's log 🐈 — 猫坐在垫子上.\r\nno final newline"


@pytest.fixture
def ngram_dir(tmp_path, capsys):
    train = tmp_path / "train.txt"
    train.write_text(TRAIN, encoding="utf-8")
    folder = tmp_path / "ng"
    folder.mkdir()
    assert main(["ngram", "train", str(train), "--order", "4", "--tokenizer", "char",
                 "-o", str(folder / "char.arpa")]) == 0
    capsys.readouterr()
    return folder


@pytest.fixture
def transformer_dir(tmp_path):
    import torch

    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.models.checkpoint import save_model
    from lmcore.models.transformer import Transformer, TransformerConfig

    tok = train_tokenizer("char", TRAIN)
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=16, n_layer=1,
                                          n_head=2, n_embd=16))
    return save_model(tmp_path / "tf", model, tok)


def _write(tmp_path, text=TEXT):
    f = tmp_path / "in.txt"
    f.write_bytes(text.encode("utf-8"))
    return f


@pytest.mark.parametrize("kind", ["ngram_dir", "transformer_dir"])
def test_round_trip_is_byte_exact(kind, request, tmp_path, capsys):
    model = request.getfixturevalue(kind)
    src = _write(tmp_path)
    assert main(["compress", "--model", str(model), str(src), "--quiet"]) == 0
    out = capsys.readouterr().out
    lmz = tmp_path / "in.txt.lmz"
    assert lmz.is_file() and f"-> {lmz}: {lmz.stat().st_size:,} bytes" in out
    assert re.search(r"model cross-entropy \d+\.\d+ bits/char", out)
    src.rename(tmp_path / "orig.txt")
    assert main(["decompress", "--model", str(model), str(lmz), "--quiet"]) == 0
    assert "checksum verified" in capsys.readouterr().out
    assert (tmp_path / "in.txt").read_bytes() == (tmp_path / "orig.txt").read_bytes()


def test_arpa_path_and_adaptive(ngram_dir, tmp_path, capsys):
    src = _write(tmp_path, TRAIN[:300])
    arpa = ngram_dir / "char.arpa"
    lmz = tmp_path / "a.lmz"
    assert main(["compress", "--model", str(arpa), str(src), "-o", str(lmz), "--adaptive",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["decompress", "--model", str(arpa), str(lmz), "-o", str(tmp_path / "b"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "another model" in err and "compressed with --adaptive: add --adaptive" in err
    assert main(["decompress", "--model", str(arpa), str(lmz), "-o", str(tmp_path / "b"),
                 "--adaptive", "--quiet"]) == 0
    assert (tmp_path / "b").read_text() == TRAIN[:300]


def test_flag_hint_only_when_the_other_setting_matches(ngram_dir, transformer_dir, tmp_path,
                                                       capsys):
    src = _write(tmp_path, TRAIN[:200])
    plain = tmp_path / "plain.lmz"
    assert main(["compress", "--model", str(ngram_dir), str(src), "-o", str(plain),
                 "--quiet"]) == 0
    capsys.readouterr()
    out = tmp_path / "out.txt"
    assert main(["decompress", "--model", str(ngram_dir), str(plain), "-o", str(out),
                 "--adaptive", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "another model" in err and "compressed without --adaptive" in err
    for flags in ([], ["--adaptive"]):  # another model altogether: no hint about the flag
        assert main(["decompress", "--model", str(transformer_dir), str(plain), "-o", str(out),
                     "--quiet", *flags]) == 2
        err = capsys.readouterr().err
        assert "another model" in err and "--adaptive" not in err


def test_model_without_tokenizer_names_tokenizers_ngram_train_offers(tmp_path, capsys):
    from lmcore.cli.ngram import TOKENIZERS

    train = tmp_path / "train.txt"
    train.write_text(TRAIN, encoding="utf-8")
    arpa = tmp_path / "ws.arpa"
    assert main(["ngram", "train", str(train), "--order", "2", "-o", str(arpa)]) == 0
    capsys.readouterr()
    assert main(["compress", "--model", str(arpa), str(_write(tmp_path)), "--quiet"]) == 2
    err = capsys.readouterr().err
    named = re.findall(r"--tokenizer (\w+)", err)
    assert "no tokenizer beside it" in err and "char" in named
    assert set(named) <= set(TOKENIZERS)
    from lmcore.cli import compress

    assert set(re.findall(r"--tokenizer (\w+)", compress.__doc__)) <= set(TOKENIZERS)


def test_wrong_model_and_bad_inputs(ngram_dir, transformer_dir, tmp_path, capsys):
    src = _write(tmp_path)
    assert main(["compress", "--model", str(ngram_dir), str(src), "--quiet"]) == 0
    capsys.readouterr()
    lmz = tmp_path / "in.txt.lmz"
    cases = [
        (["decompress", "--model", str(transformer_dir), str(lmz), "-o",
          str(tmp_path / "x")], "another model"),
        (["compress", "--model", str(ngram_dir), str(src)], "exists; use --force"),
        (["compress", "--model", str(tmp_path / "nope"), str(src), "-o", "y"], "no such model"),
        (["compress", "--model", str(ngram_dir), str(tmp_path / "missing.txt")], "no such file"),
        (["decompress", "--model", str(ngram_dir), str(src), "-o", str(tmp_path / "z")],
         "not an lmcore compressed file"),
    ]
    for argv, message in cases:
        assert main(argv + ["--quiet"]) == 2, argv
        assert message in capsys.readouterr().err
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    assert main(["compress", "--model", str(ngram_dir), str(latin), "--quiet"]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["compress", "--model", str(empty), str(src), "-o", "w", "--quiet"]) == 2
    assert "neither a Transformer" in capsys.readouterr().err


def test_damaged_lmz_is_one_line_exit_2(ngram_dir, tmp_path, capsys):
    src = _write(tmp_path, TRAIN[:400])
    lmz = tmp_path / "a.lmz"
    assert main(["compress", "--model", str(ngram_dir), str(src), "-o", str(lmz),
                 "--quiet"]) == 0
    capsys.readouterr()
    data = lmz.read_bytes()
    forged = bytearray(data)
    forged[18] = 0xFF  # the token varint: a count no file has
    for bad in (bytes(data[:30]) + bytes(b ^ 0x5A for b in data[30:]), bytes(forged),
                b"LMZ\x02" + data[4:20]):
        lmz.write_bytes(bad)
        out = tmp_path / "back.txt"
        assert main(["decompress", "--model", str(ngram_dir), str(lmz), "-o", str(out),
                     "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "internal error" not in err, err
        assert "damaged" in err or "truncated" in err or "checksum" in err, err
        assert not out.exists()


def test_mixing_coder_with_a_primer_round_trips(ngram_dir, tmp_path, capsys):
    src = _write(tmp_path)
    primer = tmp_path / "train.txt"
    primer.write_text(TRAIN, encoding="utf-8")
    lmz = tmp_path / "m.lmz"
    args = ["--model", str(ngram_dir), "--mix", "--primer", str(primer), "--quiet"]
    assert main(["compress", str(src), "-o", str(lmz), *args]) == 0
    capsys.readouterr()
    out = tmp_path / "back.txt"
    assert main(["decompress", str(lmz), "-o", str(out), *args]) == 0
    assert out.read_bytes() == src.read_bytes()
    # without the primer it is another model; the message says what a --mix file needs
    assert main(["decompress", str(lmz), "-o", str(tmp_path / "x"), "--model", str(ngram_dir),
                 "--mix", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "another model" in err and "same --primer" in err and err.count("\n") == 1
    assert main(["compress", str(src), "-o", str(tmp_path / "y"), "--model", str(ngram_dir),
                 "--primer", str(primer)]) == 2
    assert "add --mix" in capsys.readouterr().err
    assert main(["compress", str(src), "-o", str(tmp_path / "y"), "--model", str(ngram_dir),
                 "--mix", "--adaptive"]) == 2
    assert "drop --adaptive" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_mixing_coder_with_a_transformer_round_trips(ngram_dir, transformer_dir, tmp_path,
                                                       capsys):
    """--mix-with mixes a Transformer in; decoding needs it again; wrong folders are refused."""
    src = _write(tmp_path)
    primer = tmp_path / "train.txt"
    lmz = tmp_path / "m.lmz"
    args = ["--model", str(ngram_dir), "--mix", "--primer", str(primer), "--quiet"]
    both = [*args, "--mix-with", str(transformer_dir)]
    assert main(["compress", str(src), "-o", str(lmz), *both]) == 0
    capsys.readouterr()
    out = tmp_path / "back.txt"
    assert main(["decompress", str(lmz), "-o", str(out), *both]) == 0
    assert out.read_bytes() == src.read_bytes()
    assert main(["decompress", str(lmz), "-o", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err
    assert "another model" in err and "same --mix-with" in err and err.count("\n") == 1
    assert main(["compress", str(src), "-o", str(tmp_path / "y"), "--model", str(ngram_dir),
                 "--mix-with", str(transformer_dir)]) == 2
    assert "add --mix" in capsys.readouterr().err
    assert main(["compress", str(src), "-o", str(tmp_path / "y"), *args,
                 "--mix-with", str(ngram_dir)]) == 2
    assert "not a Transformer folder" in capsys.readouterr().err

    import torch

    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.models.checkpoint import save_model
    from lmcore.models.transformer import Transformer, TransformerConfig

    other = train_tokenizer("char", "zyx wvu " * 40)
    torch.manual_seed(0)
    net = Transformer(TransformerConfig(vocab_size=other.vocab_size, context=16, n_layer=1,
                                        n_head=2, n_embd=16))
    folder = save_model(tmp_path / "other", net, other)
    assert main(["compress", str(src), "-o", str(tmp_path / "y"), *args,
                 "--mix-with", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "another tokenizer" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_streams_are_the_users_choice_and_decompress_reads_them(transformer_dir, ngram_dir,
                                                                tmp_path, capsys):
    """--streams N codes N stretches side by side; the file names N; bad N is one line."""
    from lmcore.info.coding import read_header

    src = _write(tmp_path, TEXT * 4)
    default, four = tmp_path / "d.lmz", tmp_path / "4.lmz"
    assert main(["compress", "--model", str(transformer_dir), str(src), "-o", str(default),
                 "--quiet"]) == 0
    assert main(["compress", "--model", str(transformer_dir), str(src), "-o", str(four),
                 "--streams", "4", "--quiet"]) == 0
    capsys.readouterr()
    assert read_header(default.read_bytes()).streams == 1  # short text: one stream
    assert read_header(four.read_bytes()).streams == 4
    out = tmp_path / "back.txt"
    assert main(["decompress", "--model", str(transformer_dir), str(four), "-o", str(out),
                 "--quiet"]) == 0
    assert out.read_bytes() == src.read_bytes()
    for args, message in (
            (["--model", str(ngram_dir), "--streams", "4"], "--streams applies to a Transformer"),
            (["--model", str(transformer_dir), "--streams", "5000"],
             "streams must lie in 1..1024"),
            (["--model", str(transformer_dir), "--streams", "0"], "must be at least 1")):
        assert main(["compress", *args, str(src), "-o", str(tmp_path / "x.lmz"),
                     "--force", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
