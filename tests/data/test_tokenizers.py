"""Tokenizers: exact round trips, special ids, save/load, stats arithmetic and error messages."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer as HFTokenizer

from lmcore.data.tokenizers import (
    KINDS,
    SPECIAL_TOKENS,
    Tokenizer,
    _show_bytes,
    tokenizer_stats,
    train_tokenizer,
)

EXACT = ("char", "byte", "bpe")
TRAIN = (
    "The language model reads the text and predicts the next token.\n"
    "A tokenizer cuts text into tokens; the model never sees characters.\n"
    "语言模型 language model 自然语言处理 中文没有空格。\n"
    "def f(x):\n    return x + 1  # [MASK] and [PAD] are plain text here\n"
) * 40
HARD = [
    "语言模型 language model",
    "e\u0301 n\u0303 a\u0308\u0304",  # combining marks
    "👩‍👩‍👧 🙂 🇫🇷 ✍🏽",  # ZWJ sequence, flag, skin tone
    "שלום مرحبا Привет नमस्ते",
    "\x00\x01\t\r\n\u2028 \u00a0\u3000",
    "[MASK][PAD] [BOS]x[EOS] <0xE4> ▁ Ġ ##ing",
    "   leading and trailing   ",
    "",
]


@pytest.fixture(scope="module")
def toks() -> dict[str, Tokenizer]:
    sizes = {"bpe": 400, "wordpiece": 300, "unigram": 200, "word": 200}
    return {k: train_tokenizer(k, TRAIN, vocab_size=sizes.get(k)) for k in KINDS}


@pytest.mark.parametrize("kind", EXACT)
@pytest.mark.parametrize("text", HARD)
def test_exact_round_trip_on_hard_text(toks, kind, text):
    tok = toks[kind]
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("kind", EXACT)
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_exact_round_trip_on_any_unicode(toks, kind, text):
    tok = toks[kind]
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert all(i >= len(SPECIAL_TOKENS) for i in ids)  # specials never come from text


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=sorted(set(TRAIN)), max_size=120))
def test_unigram_round_trips_text_of_seen_characters(toks, text):
    tok = toks["unigram"]
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("text", [" x ", "  the model", "model  ", "\n the\n", "语言 模型 "])
def test_unigram_keeps_leading_and_trailing_spaces(toks, text):
    tok = toks["unigram"]
    assert tok.decode(tok.encode(text)) == text


def test_unigram_keeps_a_literal_metaspace_character():
    tok = train_tokenizer("unigram", "a ▁ b ▁▁ c\n" * 30)
    assert tok.decode(tok.encode(" ▁a▁ b")) == " ▁a▁ b"
    assert "".join(tok.token_strings(tok.encode(" b▁"))) == "␣b▁"


@pytest.mark.parametrize("line", TRAIN.splitlines()[:5])
def test_word_round_trips_known_words_with_their_spacing(toks, line):
    tok = toks["word"]
    ids = tok.encode(line)
    assert tok.unk_id not in ids
    assert tok.decode(ids) == line


def test_wordpiece_decode_normalises_spacing(toks):
    tok = toks["wordpiece"]
    assert tok.decode(tok.encode("the   model\n\nreads")) == "the model reads"


@pytest.mark.parametrize("kind", KINDS)
def test_special_tokens_at_ids_0_to_6(toks, kind):
    tok = toks[kind]
    assert [tok.id_to_token(i) for i in range(7)] == list(SPECIAL_TOKENS)
    assert [tok.token_to_id(s) for s in SPECIAL_TOKENS] == list(range(7))
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id, tok.mask_id, tok.cls_id,
            tok.sep_id) == tuple(range(7))


@pytest.mark.parametrize("kind", KINDS)
def test_special_strings_in_text_are_plain_text(kind):
    text = "[MASK] [PAD] [CLS]x[SEP] [BOS][EOS] [UNK]\n" * 50 + "more words here\n" * 10
    tok = train_tokenizer(kind, text, vocab_size={"bpe": 300, "wordpiece": 120,
                                                  "unigram": 60}.get(kind))
    ids = tok.encode("[MASK] [PAD] [CLS]x[SEP] [BOS][EOS] [UNK]")
    assert not set(ids) & set(range(7)), [tok.id_to_token(i) for i in ids]


def test_decode_shows_or_skips_special_ids(toks):
    tok = toks["bpe"]
    ids = [tok.bos_id] + tok.encode("the model") + [tok.eos_id]
    assert tok.decode(ids) == "[BOS]the model[EOS]"
    assert tok.decode(ids, skip_special=True) == "the model"


def test_byte_ids_are_byte_values_plus_seven(toks):
    assert toks["byte"].encode("A\n语") == [7 + b for b in "A\n语".encode()]
    assert toks["byte"].vocab_size == 263


@pytest.mark.parametrize("kind", KINDS)
def test_chinese_is_tokenised_by_every_kind(toks, kind):
    tok = toks[kind]
    text = "语言模型 language model"
    ids = tok.encode(text)
    assert ids and tok.unk_id not in ids
    assert tokenizer_stats(tok, text).unk_share == 0.0
    if kind != "wordpiece":  # wordpiece spaces out CJK characters on decode
        assert tok.decode(ids) == text
    else:
        assert tok.decode(ids).replace(" ", "") == text.replace(" ", "")


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_gives_identical_tokenizer(toks, tmp_path, kind):
    tok = toks[kind]
    path = tmp_path / f"{kind}.json"
    tok.save(path)
    back = Tokenizer.load(path)
    assert back.kind == kind
    assert back.vocab_size == tok.vocab_size
    assert back.fingerprint() == tok.fingerprint()
    for text in HARD + [TRAIN[:2000]]:
        assert back.encode(text) == tok.encode(text)
    assert Tokenizer.from_json(tok.to_json()).encode(TRAIN[:500]) == tok.encode(TRAIN[:500])
    # the file is plain Hugging Face JSON
    assert HFTokenizer.from_file(str(path)).encode(
        "language model", add_special_tokens=False).ids == tok.encode("language model")


def test_fingerprint_tells_tokenizers_apart(toks):
    prints = {toks[k].fingerprint() for k in KINDS}
    assert len(prints) == len(KINDS)
    assert train_tokenizer("bpe", TRAIN, 400).fingerprint() == toks["bpe"].fingerprint()
    assert train_tokenizer("bpe", TRAIN, 401).fingerprint() != toks["bpe"].fingerprint()


@pytest.mark.parametrize("kind", KINDS)
def test_offsets_locate_every_token(toks, kind):
    tok = toks[kind]
    text = "The model reads 语言模型, 🙂 and e\u0301."
    ids, offsets = tok.encode_offsets(text)
    assert ids == tok.encode(text)
    assert len(offsets) == len(ids)
    assert all(0 <= a <= b <= len(text) for a, b in offsets)
    assert [a for a, _ in offsets] == sorted(a for a, _ in offsets)
    if kind in ("char", "byte", "bpe"):  # every character is covered by some token
        covered = set()
        for a, b in offsets:
            covered.update(range(a, b))
        assert covered == set(range(len(text)))


def test_token_strings_are_readable(toks):
    bpe, char, byte = toks["bpe"], toks["char"], toks["byte"]
    assert bpe.token_strings(bpe.encode(" model")) == ["␣model"]
    assert char.token_strings(char.encode("a ⊕\n")) == ["a", "␣", "<0xE2>", "<0x8A>", "<0x95>",
                                                         "⏎"]
    assert byte.token_strings(byte.encode("语")) == ["<0xE8>", "<0xAF>", "<0xAD>"]
    assert byte.token_strings([byte.mask_id]) == ["[MASK]"]
    assert "".join(bpe.token_strings(bpe.encode("the model"))) == "the␣model"
    # a byte-level token can end inside a character: the whole part shows, the rest as bytes
    assert _show_bytes("a 语".encode()[:4]) == "a␣<0xE8><0xAF>"
    assert _show_bytes("语".encode()[2:] + "言".encode()) == "<0xAD>言"
    assert _show_bytes(" 语".encode()) == "␣语"


@pytest.mark.parametrize("kind", KINDS)
def test_stats_arithmetic(toks, kind):
    tok = toks[kind]
    text = TRAIN[:3000] + "unseen zyxwvut words ⊕"
    s = tokenizer_stats(tok, text)
    ids = tok.encode(text)
    assert s.kind == kind and s.vocab_size == tok.vocab_size
    assert s.tokens == len(ids)
    assert s.chars == len(text) and s.bytes == len(text.encode())
    assert s.chars_per_token == pytest.approx(s.chars / s.tokens)
    assert s.bytes_per_token == pytest.approx(s.bytes / s.tokens)
    assert s.unk_share == pytest.approx(ids.count(tok.unk_id) / len(ids))
    assert s.train_seconds is not None and s.train_seconds >= 0
    assert s.as_dict()["tokens"] == s.tokens and set(s.as_dict()) >= {"unk_share", "kind"}


def test_stats_unknown_share(toks):
    unseen = "Zyxwvut qqqq jjjj vvvvv kkkk ⊕ ∮ ℵ"
    assert tokenizer_stats(toks["word"], unseen).unk_share > 0
    assert tokenizer_stats(toks["wordpiece"], unseen).unk_share > 0
    for kind in EXACT:
        assert tokenizer_stats(toks[kind], unseen).unk_share == 0.0
    empty = tokenizer_stats(toks["bpe"], "")
    assert (empty.tokens, empty.chars_per_token, empty.unk_share) == (0, 0.0, 0.0)


HANG_GUARD_S = 300  # not a speed test (a few seconds when idle): only catches a hang


def test_default_vocab_sizes_on_builtin_corpus():
    from lmcore.data.builtin import pydoc_corpus

    text = pydoc_corpus().split().train
    start = time.perf_counter()
    toks = {k: train_tokenizer(k, text) for k in ("bpe", "wordpiece", "unigram")}
    assert time.perf_counter() - start < HANG_GUARD_S, "hang guard"
    assert {k: t.vocab_size for k, t in toks.items()} == {"bpe": 1000, "wordpiece": 1000,
                                                          "unigram": 1000}
    bpe = toks["bpe"]
    assert tokenizer_stats(bpe, pydoc_corpus().split().test).chars_per_token > 2.5


def test_char_vocab_cap_keeps_most_frequent_and_still_round_trips():
    tok = train_tokenizer("char", "aaaabbbc语", vocab_size=265)
    assert tok.vocab_size == 265
    assert tok.token_to_id("a") == 263 and tok.token_to_id("b") == 264
    assert tok.token_to_id("c") is None
    assert tok.decode(tok.encode("cab语")) == "cab语"


@pytest.mark.parametrize(("kind", "text", "vocab", "message"), [
    ("sentencepiece", "abc", None, "unknown tokenizer kind 'sentencepiece'"),
    ("bpe", "", None, "empty text"),
    ("unigram", "  \n ", None, "whitespace-only"),
    ("bpe", "abc", 100, "vocab_size=100 is too small for a bpe tokenizer"),
    ("char", "abc", 10, "at least 263"),
    ("byte", "abc", 500, "exactly 263 tokens"),
    ("word", "abc", 5, "at least 8"),
    ("wordpiece", TRAIN, 60, "use vocab_size >= "),
    ("unigram", TRAIN, 30, "too small for a unigram tokenizer"),
])
def test_training_errors_are_clear(kind, text, vocab, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        train_tokenizer(kind, text, vocab_size=vocab)


def test_min_frequency_must_be_positive():
    with pytest.raises(ValueError, match="min_frequency"):
        train_tokenizer("bpe", TRAIN, min_frequency=0)


def test_bad_json_and_bad_ids_are_value_errors(toks):
    with pytest.raises(ValueError, match="not a tokenizer JSON"):
        Tokenizer.from_json("{not json")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        toks["bpe"].decode([5, 10_000])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        toks["char"].id_to_token(-1)
    foreign = HFTokenizer.from_str(toks["bpe"].to_json())
    spec = json.loads(foreign.to_str())
    spec["added_tokens"] = []
    spec["model"]["vocab"] = {k: v + 1 for k, v in spec["model"]["vocab"].items()}
    with pytest.raises(ValueError, match="not an lmcore tokenizer"):
        Tokenizer.from_json(json.dumps(spec))


@pytest.mark.parametrize("kind", ["bpe", "wordpiece", "unigram", "word", "char"])
def test_a_huge_vocabulary_is_refused_not_a_rust_abort(kind):
    """--vocab-size 1000000000 made the Rust trainer reserve 70 GB and abort (exit 134)."""
    with pytest.raises(ValueError, match="too large: at most 1,000,000"):
        train_tokenizer(kind, "some text to learn from\n" * 10, vocab_size=10**9)
