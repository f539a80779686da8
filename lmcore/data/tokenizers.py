"""Tokenizers: one wrapper around Hugging Face `tokenizers` for six ways to cut text into ids.

Kinds and what decode(encode(x)) gives back:

- ``char``: every character of the training text is a token; characters never seen fall back
  to their UTF-8 bytes (``<0xE4>`` tokens), so the round trip is exact on any Unicode text.
- ``byte``: the 256 byte values (GPT-2's byte-to-character map); exact round trip.
- ``bpe``: byte-level BPE (GPT-2 style pre-tokenizer, merges learned from the text); exact.
- ``word``: words ``\\w+``, single punctuation marks, runs of newlines and runs of other
  whitespace (WORD_PATTERN); exact when every
  word, mark and whitespace run was seen in training, otherwise each unseen one decodes as
  ``[UNK]``.
- ``wordpiece``: BERT-style (case kept, punctuation and CJK characters split off, ``##``
  continuations); decode joins words with single spaces, so whitespace is not kept and
  unseen characters become ``[UNK]``.
- ``unigram``: unigram LM pieces (Kudo 2018) within GPT-2-style words; exact when every
  character was seen in training, unseen ones become ``[UNK]``.

Every kind has SPECIAL_TOKENS at ids 0..6. They are never produced by encoding text: the
literal string "[MASK]" in a text is encoded as ordinary characters.

The saved form is plain Hugging Face JSON (loadable by `tokenizers.Tokenizer.from_file`); the
kind is read back from the pipeline itself (model type, byte fallback, byte-level regex).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer

from lmcore.data.atomic import write_text_atomic

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]", "[MASK]", "[CLS]", "[SEP]")
KINDS = ("char", "byte", "word", "bpe", "wordpiece", "unigram")
DEFAULT_VOCAB = {"bpe": 1000, "wordpiece": 1000, "unigram": 1000, "word": 5000}
MAX_VOCAB = 1_000_000  # far above any text here; 10**9 made the Rust trainer abort (exit 134)
DEFAULT_MIN_FREQUENCY = {"char": 1, "byte": 1, "word": 1, "bpe": 2, "wordpiece": 2,
                         "unigram": 1}
WORD_PATTERN = r"\w+|[^\w\s]|\n+|[^\S\n]+"
# GPT-2's word split, except that "[" always stands alone: then no unigram piece can spell a
# special token such as "[MASK]". Spaces stay literal (no "▁"), so decoding is concatenation.
UNIGRAM_PATTERN = r" ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}\[]+|\[|\s+(?!\S)|\s+"
N_SPECIAL = len(SPECIAL_TOKENS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID, MASK_ID, CLS_ID, SEP_ID = range(N_SPECIAL)  # in every kind
_VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


BYTE_CHARS = _bytes_to_unicode()  # byte value -> its byte-level character
_CHAR_BYTES = {c: b for b, c in BYTE_CHARS.items()}
FALLBACK_TOKENS = tuple(f"<0x{b:02X}>" for b in range(256))


def _visible(s: str) -> str:
    return "".join(_VISIBLE.get(ch, ch) for ch in s)


def _show_bytes(raw: bytes) -> str:
    """UTF-8 text where it decodes, <0xE4> for each byte of a cut-off character."""
    out = []
    while raw:
        try:
            out.append(_visible(raw.decode("utf-8")))
            break
        except UnicodeDecodeError as exc:
            out.append(_visible(raw[: exc.start].decode("utf-8")))
            out.append("".join(f"<0x{b:02X}>" for b in raw[exc.start: exc.end]))
            raw = raw[exc.end:]
    return "".join(out)


class Tokenizer:
    """A trained tokenizer of one `kind`; ids 0..6 are SPECIAL_TOKENS in every kind."""

    def __init__(self, hf: HFTokenizer, kind: str | None = None,
                 train_seconds: float | None = None) -> None:
        self.hf = hf
        self.kind = kind or _infer_kind(hf)
        if self.kind not in KINDS:
            raise ValueError(f"unknown tokenizer kind {self.kind!r}; choose one of {KINDS}")
        for i, tok in enumerate(SPECIAL_TOKENS):
            if hf.token_to_id(tok) != i:
                raise ValueError(f"not an lmcore tokenizer: special token {tok} is not at id {i}")
        # Specials are matched only by id, never in the text: "[MASK]" typed in a text is text.
        hf.encode_special_tokens = True
        self.train_seconds = train_seconds
        (self.pad_id, self.unk_id, self.bos_id, self.eos_id, self.mask_id, self.cls_id,
         self.sep_id) = range(N_SPECIAL)

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self.kind!r}, vocab_size={self.vocab_size})"

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no BOS/EOS added)."""
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids and each token's (start, end) character span in `text`."""
        enc = self.hf.encode(text, add_special_tokens=False)
        return enc.ids, [tuple(o) for o in enc.offsets]

    def decode(self, ids: Sequence[int], skip_special: bool = False) -> str:
        """Text of `ids`; special tokens appear as their names unless `skip_special`."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"token id {bad[0]} is outside the vocabulary "
                             f"(0..{self.vocab_size - 1})")
        return self.hf.decode(ids, skip_special_tokens=skip_special)

    def id_to_token(self, i: int) -> str:
        tok = self.hf.id_to_token(int(i)) if 0 <= int(i) < self.vocab_size else None
        if tok is None:
            raise ValueError(f"token id {i} is outside the vocabulary "
                             f"(0..{self.vocab_size - 1})")
        return tok

    def token_to_id(self, s: str) -> int | None:
        return self.hf.token_to_id(s)

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """A readable string per token: whitespace shown as ␣ ⏎ ⇥, stray bytes as <0xE4>."""
        return [self._show(int(i)) for i in ids]

    def _show(self, i: int) -> str:
        tok = self.id_to_token(i)
        if i < N_SPECIAL:
            return tok
        if self.kind in ("byte", "bpe"):
            return _show_bytes(bytes(_CHAR_BYTES[c] for c in tok))
        return _visible(tok)

    def to_json(self) -> str:
        """The Hugging Face JSON of this tokenizer (kind is recoverable from it)."""
        return self.hf.to_str()

    @classmethod
    def from_json(cls, s: str) -> Tokenizer:
        try:
            hf = HFTokenizer.from_str(s)
        except Exception as exc:  # the Rust parser raises a bare Exception
            raise ValueError(f"not a tokenizer JSON: {exc}") from None
        return cls(hf)

    def save(self, path: str | Path) -> None:
        """Write the Hugging Face JSON to `path` (atomically: temp file, then rename)."""
        write_text_atomic(path, self.to_json(), fsync=False)

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def fingerprint(self) -> str:
        """sha256 of the JSON with floats to 12 digits (the JSON reader may move the last bit)."""
        spec = json.loads(self.to_json(), parse_float=lambda s: f"{float(s):.12g}")
        canon = json.dumps(spec, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def _infer_kind(hf: HFTokenizer) -> str:
    """The lmcore kind of a Hugging Face tokenizer, read from its model and pre-tokenizer."""
    spec = json.loads(hf.to_str())
    model, pre = spec["model"]["type"], spec.get("pre_tokenizer") or {}
    if model == "Unigram":
        return "unigram"
    if model == "WordPiece":
        return "wordpiece"
    if model == "WordLevel":
        return "word"
    if model == "BPE":
        if spec["model"].get("byte_fallback"):
            return "char"
        if pre.get("type") == "ByteLevel":
            return "bpe" if pre.get("use_regex", True) else "byte"
    raise ValueError(f"not an lmcore tokenizer: {model} model with {pre.get('type')} "
                     "pre-tokenizer")


def _finish(hf: HFTokenizer) -> HFTokenizer:
    hf.add_special_tokens(list(SPECIAL_TOKENS))
    return hf


def _char(text: str, vocab_size: int | None, min_frequency: int) -> HFTokenizer:
    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS + FALLBACK_TOKENS)}
    counts = Counter(text)
    chars = sorted((c for c, n in counts.items() if n >= min_frequency),
                   key=lambda c: (-counts[c], c))
    if vocab_size is not None:
        chars = chars[: vocab_size - len(vocab)]
    for c in chars:
        vocab[c] = len(vocab)
    hf = HFTokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]", byte_fallback=True))
    hf.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    return _finish(hf)


def _byte() -> HFTokenizer:
    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    for b in range(256):
        vocab[BYTE_CHARS[b]] = N_SPECIAL + b  # byte b has id 7 + b
    hf = HFTokenizer(models.BPE(vocab=vocab, merges=[]))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    hf.decoder = decoders.ByteLevel()
    return _finish(hf)


def _trained(kind: str, text: str, vocab_size: int, min_frequency: int) -> HFTokenizer:
    specials = list(SPECIAL_TOKENS)
    if kind == "bpe":
        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    elif kind == "word":
        hf = HFTokenizer(models.WordLevel(unk_token="[UNK]"))
        hf.pre_tokenizer = pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="isolated")
        hf.decoder = decoders.Fuse()
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=specials, show_progress=False)
    elif kind == "wordpiece":
        hf = HFTokenizer(models.WordPiece(unk_token="[UNK]"))
        hf.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                   strip_accents=False, lowercase=False)
        hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        hf.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=specials, show_progress=False)
    else:  # unigram
        hf = HFTokenizer(models.Unigram())
        hf.pre_tokenizer = pre_tokenizers.Split(Regex(UNIGRAM_PATTERN), behavior="isolated")
        hf.decoder = decoders.Fuse()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials,
                                          unk_token="[UNK]", show_progress=False)
    try:
        hf.train_from_iterator(_chunks(text), trainer=trainer)
    except Exception as exc:  # the Rust trainer raises a bare Exception
        raise ValueError(f"vocab_size={vocab_size} is too small for a {kind} tokenizer on "
                         f"this text ({exc}); use a larger vocab_size") from None
    got = hf.get_vocab_size()
    if got > vocab_size:
        raise ValueError(f"vocab_size={vocab_size} is too small for a {kind} tokenizer on this "
                         f"text: the {N_SPECIAL} special tokens and the alphabet alone need "
                         f"{got}; use vocab_size >= {got}")
    # Reload once so a fresh tokenizer is bit-identical to the one read back from its JSON.
    return _finish(HFTokenizer.from_str(hf.to_str()))


def _chunks(text: str, size: int = 1 << 16) -> list[str]:
    """The text cut at line ends into pieces of about `size` characters (trainers go parallel)."""
    out, start = [], 0
    while start < len(text):
        end = text.find("\n", start + size)
        end = len(text) if end < 0 else end + 1
        out.append(text[start:end])
        start = end
    return out


_BYTES_NEEDED = (N_SPECIAL + 256, f"{N_SPECIAL} special tokens + 256 bytes")
_ONE_NEEDED = (N_SPECIAL + 1, f"{N_SPECIAL} special tokens + 1")
MIN_VOCAB = {"char": _BYTES_NEEDED, "byte": _BYTES_NEEDED, "bpe": _BYTES_NEEDED,
             "word": _ONE_NEEDED, "wordpiece": _ONE_NEEDED, "unigram": _ONE_NEEDED}


def train_tokenizer(kind: str, text: str, vocab_size: int | None = None,
                    min_frequency: int | None = None) -> Tokenizer:
    """Train a tokenizer of `kind` on `text`; vocab_size defaults per kind (DEFAULT_VOCAB).

    char keeps the `vocab_size - 263` most frequent characters (all when None); byte has exactly
    263 tokens; min_frequency (units seen fewer times are dropped) does not apply to unigram.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not text:
        raise ValueError("cannot train a tokenizer on empty text")
    if kind in ("word", "wordpiece", "unigram") and not text.strip():
        raise ValueError(f"cannot train a {kind} tokenizer on whitespace-only text")
    if vocab_size is None:
        vocab_size = DEFAULT_VOCAB.get(kind)
    elif kind == "byte" and vocab_size != N_SPECIAL + 256:
        raise ValueError(f"a byte tokenizer has exactly {N_SPECIAL + 256} tokens "
                         f"({N_SPECIAL} special + 256 bytes), not vocab_size={vocab_size}")
    least, why = MIN_VOCAB[kind]
    if vocab_size is not None and vocab_size > MAX_VOCAB:  # tokenizers would abort the process
        raise ValueError(f"vocab_size={vocab_size:,} is too large: at most {MAX_VOCAB:,} (the "
                         "Rust trainer reserves memory for the whole vocabulary up front)")
    if vocab_size is not None and vocab_size < least:
        raise ValueError(f"vocab_size={vocab_size} is too small for a {kind} tokenizer: "
                         f"it needs at least {least} ({why})")
    min_frequency = DEFAULT_MIN_FREQUENCY[kind] if min_frequency is None else min_frequency
    if min_frequency < 1:
        raise ValueError(f"min_frequency must be at least 1, got {min_frequency}")
    start = time.perf_counter()
    if kind == "char":
        hf = _char(text, vocab_size, min_frequency)
    elif kind == "byte":
        hf = _byte()
    else:
        hf = _trained(kind, text, vocab_size, min_frequency)
    return Tokenizer(hf, kind, train_seconds=time.perf_counter() - start)


@dataclass(frozen=True)
class TokenizerStats:
    """How a tokenizer cuts one text: sizes, text per token, unknown share, training time."""

    kind: str
    vocab_size: int
    tokens: int
    chars: int
    bytes: int
    chars_per_token: float
    bytes_per_token: float
    unk_share: float
    train_seconds: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def tokenizer_stats(tok: Tokenizer, text: str) -> TokenizerStats:
    """Stats of `tok` on `text` (usually held-out text, not the training text)."""
    ids = tok.encode(text)
    n = len(ids)
    n_bytes = len(text.encode("utf-8"))
    return TokenizerStats(
        kind=tok.kind, vocab_size=tok.vocab_size, tokens=n, chars=len(text), bytes=n_bytes,
        chars_per_token=len(text) / n if n else 0.0,
        bytes_per_token=n_bytes / n if n else 0.0,
        unk_share=sum(1 for i in ids if i == tok.unk_id) / n if n else 0.0,
        train_seconds=tok.train_seconds,
    )
