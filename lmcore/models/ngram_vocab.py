"""The vocabulary of an n-gram model: its ids, their ARPA names and `<s>`, `</s>`, `<unk>`.

Two ways to get one: KenLM's whitespace convention (`Vocab.empty()` + `add_sentences`: words
split exactly where lmplz splits them, ids `<unk>`, `<s>`, `</s>` then words in first-seen
order), or a lmcore tokenizer (`tokenizer_vocab`: its ids are the vocabulary, its BOS/EOS/UNK
play `<s>`/`</s>`/`<unk>`). A token string may hold spaces or newlines, which an ARPA word
cannot: `escape_word` / `unescape_word` make every token one whitespace-free word and back.
Both `ngram.py` (the models) and `arpa.py` (the file format) build on this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
# lmplz's word delimiters (lm/builder/corpus_count.cc: BoolCharacter::Build("\0\t\n\r ")); \v, \f
# and non-ASCII spaces are ordinary characters of a word
_KENLM_SPACE = str.maketrans("\0\t\n\r", "    ")
_ESC = {"\\": "\\\\", " ": "\\s", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNESC = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")


def split_words(line: str) -> list[str]:
    """Tokens of a line split where lmplz splits: NUL, tab, LF, CR and space, nothing else."""
    return [w for w in line.translate(_KENLM_SPACE).split(" ") if w]


@dataclass
class Vocab:
    """The ids a model predicts over: their ARPA names and the roles of `<s>`, `</s>`, `<unk>`."""

    words: list[str]
    bos: int
    eos: int
    unk: int
    reserved: frozenset[int] = frozenset()  # ids never predicted unless seen in training
    index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {w: i for i, w in enumerate(self.words)}

    @property
    def size(self) -> int:
        return len(self.words)

    @classmethod
    def empty(cls) -> Vocab:
        """KenLM's start: `<unk>`, `<s>`, `</s>` at ids 0, 1, 2; words follow in first-seen order."""
        return cls(words=[UNK, BOS, EOS], bos=1, eos=2, unk=0)

    def add_sentences(self, lines: Iterable[str]) -> list[np.ndarray]:
        """Ids of each whitespace-tokenised line, adding new words to the vocabulary."""
        index, words, out = self.index, self.words, []
        for line in lines:
            toks = split_words(line)
            if BOS in toks or EOS in toks or UNK in toks:
                bad = next(w for w in (BOS, EOS, UNK) if w in toks)
                raise ValueError(f"the training text contains the word {bad}: {BOS}, {EOS} and "
                                 f"{UNK} are reserved ({BOS} and {EOS} mark sentence boundaries, "
                                 f"one sentence per line; {UNK} stands for every unseen word), "
                                 "as in KenLM's lmplz; remove or rename them")
            ids = [index.setdefault(w, len(index)) for w in toks]
            out.append(np.asarray(ids, dtype=np.int64))
        words.extend(list(index)[len(words):])
        return out

    def encode_sentences(self, lines: Iterable[str]) -> list[np.ndarray]:
        """Ids of each whitespace-tokenised line; unknown words map to `<unk>`."""
        get, unk = self.index.get, self.unk
        return [np.asarray([get(w, unk) for w in split_words(line)], dtype=np.int64)
                for line in lines]


def tokenizer_vocab(tokenizer: Tokenizer) -> Vocab:
    """A vocabulary over a lmcore tokenizer's ids; its BOS/EOS/UNK play `<s>`/`</s>`/`<unk>`."""
    special = {tokenizer.bos_id: BOS, tokenizer.eos_id: EOS, tokenizer.unk_id: UNK}
    words = [special.get(i) or escape_word(tokenizer.id_to_token(i))
             for i in range(tokenizer.vocab_size)]
    reserved = frozenset({tokenizer.pad_id, tokenizer.mask_id, tokenizer.cls_id,
                          tokenizer.sep_id})
    return Vocab(words=words, bos=tokenizer.bos_id, eos=tokenizer.eos_id, unk=tokenizer.unk_id,
                 reserved=reserved)


def escape_word(token: str) -> str:
    """One whitespace-free ARPA word for a token string (reversible with `unescape_word`)."""
    out = "".join(_ESC.get(ch) or (f"\\u{ord(ch):04x}" if ch.isspace() else ch) for ch in token)
    if out in (BOS, EOS, UNK) or out == "":
        out = "\\" + out if out else "\\e"
    return out


def unescape_word(word: str) -> str:
    """The token string behind an escaped ARPA word."""
    simple = {"\\": "\\", "s": " ", "n": "\n", "t": "\t", "r": "\r", "e": "", "<": "<"}

    def sub(m: re.Match) -> str:
        code = m.group(1)
        if code.startswith("u") and len(code) == 5:
            return chr(int(code[1:], 16))
        if code in simple:
            return simple[code]
        raise ValueError(f"bad escape \\{code} in ARPA word {word!r}")

    return _UNESC.sub(sub, word)
