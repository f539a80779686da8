"""ARPA back-off files: how an n-gram model moves to and from KenLM, SRILM and other toolkits.

Format: a `\\data\\` header with `ngram n=COUNT` lines, then one `\\n-grams:` section per order
with `log10(p)<TAB>w1 .. wn[<TAB>log10(backoff)]` lines, then `\\end\\`. Probabilities of zero
are written as -99 (the SRILM convention) and read back as zero; `<s>` is written with 0 as
KenLM does and is never predicted.

Token strings from a subword tokenizer can hold spaces or newlines, which ARPA cannot: such
characters and backslashes are escaped (`\\s`, `\\n`, `\\t`, `\\r`, `\\\\`, `\\uXXXX`) so every
token stays one ARPA word; the tokenizer's BOS/EOS/UNK are written as `<s>`, `</s>`, `<unk>`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TextIO

import numpy as np

from lmcore.models.ngram import BOS, EOS, LN10, UNK, NGramConfig, NGramLM, Vocab, tokenizer_vocab

ZERO_LOG10 = -99.0
_ESC = {"\\": "\\\\", " ": "\\s", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNESC = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")


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


def _fmt(values: np.ndarray, digits: int) -> list[str]:
    out = []
    for v in values.tolist():
        if v == -math.inf or v <= ZERO_LOG10:
            out.append("-99")
        elif v == 0:
            out.append("0")
        else:
            out.append(format(v, f".{digits}g"))
    return out


def ngram_words(model: NGramLM, n: int) -> np.ndarray:
    """(K_n, n) word ids of each stored n-gram of order n, in table order."""
    V = model.vocab_size
    keys = model.keys[n - 1]
    cols = []
    row = keys
    for m in range(n, 0, -1):
        if m == 1:
            cols.append(row)
        else:
            cols.append(row % V)
            row = model.keys[m - 2][row // V] if m > 2 else row // V
    return np.stack(cols[::-1], axis=1) if cols else np.zeros((0, n), dtype=np.int64)


def write_arpa(model: NGramLM, dest: str | Path | TextIO, digits: int = 8) -> None:
    """Write `model` as an ARPA file (log10 values with `digits` significant digits)."""
    if isinstance(dest, str | Path):
        with open(dest, "w", encoding="utf-8", newline="\n") as f:
            write_arpa(model, f, digits)
        return
    f = dest
    words = np.array(model.vocab.words, dtype=object)
    N = model.order
    f.write("\\data\\\n")
    for n in range(1, N + 1):
        f.write(f"ngram {n}={len(model.keys[n - 1])}\n")
    for n in range(1, N + 1):
        f.write(f"\n\\{n}-grams:\n")
        W = ngram_words(model, n)
        lp10 = model.lp[n - 1] / LN10
        if n == 1:
            lp10 = lp10.copy()
            lp10[model.vocab.bos] = 0.0  # KenLM writes <s> with 0; it is never predicted
        names = words[W[:, 0]]
        for c in range(1, n):
            names = names + " " + words[W[:, c]]
        cols = [_fmt(lp10, digits), names.tolist()]
        if n < N:
            cols.append(_fmt(model.bo[n - 1] / LN10, digits))
        f.write("\n".join("\t".join(parts) for parts in zip(*cols, strict=True)))
        f.write("\n")
    f.write("\n\\end\\\n")


def _parse(lines) -> tuple[list[int], list[list[list[str]]]]:
    """Declared counts and, per order, the split lines of its section."""
    declared: list[int] = []
    sections: list[list[list[str]]] = []
    state = "start"
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if state == "start":
            if line == "\\data\\":
                state = "data"
            continue
        if line == "\\end\\":
            state = "end"
            break
        m = re.fullmatch(r"\\(\d+)-grams:", line)
        if m:
            n = int(m.group(1))
            if n != len(sections) + 1:
                raise ValueError(f"ARPA line {lineno}: section \\{n}-grams: is out of order")
            sections.append([])
            state = "grams"
            continue
        if state == "data":
            m = re.fullmatch(r"ngram\s+(\d+)\s*=\s*(\d+)", line)
            if not m:
                raise ValueError(f"ARPA line {lineno}: expected 'ngram N=COUNT', got {line!r}")
            declared.append(int(m.group(2)))
            continue
        sections[-1].append(line.split())
    if state == "start":
        raise ValueError("not an ARPA file: no \\data\\ header")
    if state != "end":
        raise ValueError("truncated ARPA file: no \\end\\ marker")
    return declared, sections


def read_arpa(src: str | Path | TextIO, tokenizer=None) -> NGramLM:
    """Load an ARPA file as an `NGramLM` (over a tokenizer's ids when one is given)."""
    if isinstance(src, str | Path):
        with open(src, encoding="utf-8") as f:
            return read_arpa(f, tokenizer)
    declared, sections = _parse(src)
    N = len(sections)
    if N == 0 or N > 6:
        raise ValueError(f"an ARPA model needs 1 to 6 orders, this file has {N}")
    for n, (want, got) in enumerate(zip(declared, sections, strict=False), start=1):
        if want != len(got):
            raise ValueError(f"ARPA header declares {want} {n}-grams but the file has {len(got)}")
    uni = sections[0]
    if tokenizer is None:
        names = [row[1] for row in uni if len(row) >= 2]
        if UNK not in names:
            names.append(UNK)  # closed vocabulary: unknown words get probability 0
        missing = [w for w in (BOS, EOS) if w not in names]
        if missing:
            raise ValueError(f"the ARPA file has no {' or '.join(missing)} unigram")
        vocab = Vocab(words=names, bos=names.index(BOS), eos=names.index(EOS),
                      unk=names.index(UNK))
    else:
        vocab = tokenizer_vocab(tokenizer)
    index = vocab.index
    V = vocab.size
    keys, lps, bos = [], [], []
    for n, rows in enumerate(sections, start=1):
        if any(len(r) not in (n + 1, n + 2) for r in rows):
            bad = next(r for r in rows if len(r) not in (n + 1, n + 2))
            raise ValueError(f"bad {n}-gram line in ARPA file: {' '.join(bad)!r}")
        try:
            W = np.array([[index[w] for w in r[1:n + 1]] for r in rows],
                         dtype=np.int64).reshape(len(rows), n)
        except KeyError as exc:
            raise ValueError(f"ARPA word {exc.args[0]!r} is not in the vocabulary"
                             + (" of the tokenizer" if tokenizer is not None else "")) from None
        lp10 = np.array([float(r[0]) for r in rows], dtype=np.float64)
        bo10 = np.array([float(r[n + 1]) if len(r) == n + 2 else 0.0 for r in rows])
        lp = np.where(lp10 <= ZERO_LOG10, -np.inf, lp10 * LN10)
        bo = np.where(bo10 <= ZERO_LOG10, -np.inf, bo10 * LN10)
        if n == 1:
            dense_lp, dense_bo = np.full(V, -np.inf), np.zeros(V)
            dense_lp[W[:, 0]], dense_bo[W[:, 0]] = lp, bo
            dense_lp[vocab.bos] = -np.inf
            keys.append(np.arange(V, dtype=np.int64))
            lps.append(dense_lp)
            bos.append(dense_bo)
            continue
        row = W[:, 0]
        for j in range(2, n):
            key = row * V + W[:, j - 1]
            table = keys[j - 1]
            i = np.minimum(np.searchsorted(table, key), len(table) - 1)
            lost = table[i] != key
            if np.any(lost):
                r = rows[int(np.flatnonzero(lost)[0])]
                raise ValueError(f"ARPA {n}-gram {' '.join(r[1:n + 1])!r} has no "
                                 f"{j}-gram prefix entry; the file is not a complete back-off "
                                 "model")
            row = i
        key = row * V + W[:, n - 1]
        order = np.argsort(key, kind="stable")
        key = key[order]
        if np.any(key[1:] == key[:-1]):
            raise ValueError(f"the ARPA file lists a {n}-gram twice")
        keys.append(key)
        lps.append(lp[order])
        bos.append(bo[order])
    known = np.isfinite(lps[0])
    known[vocab.unk] = False
    config = NGramConfig(order=N, smoothing="arpa")
    return NGramLM(config, vocab, keys, lps, bos[:N - 1], known=known, tokenizer=tokenizer)
