"""ARPA back-off files: how an n-gram model moves to and from KenLM, SRILM and other toolkits.

Format: a `\\data\\` header with `ngram n=COUNT` lines, then one `\\n-grams:` section per order
with `log10(p)<TAB>w1 .. wn[<TAB>log10(backoff)]` lines, then `\\end\\`. Probabilities of zero
are written as -99 (the SRILM convention) and read back as zero; `<s>` is written with 0 as
KenLM does and is never predicted.

Fields are separated by tabs and spaces only (KenLM's `kARPASpaces`: tab, space, CR, LF), so a
word holding a vertical tab, form feed or no-break space reads back as one word.

Unigrams: as in KenLM, the file lists the words seen in training plus `<s>`, `</s>` and
`<unk>`; a model over a tokenizer's ids leaves out the ids it never saw. Reading it back with
the tokenizer, every id the file does not list gets `<unk>`'s probability and counts as
out-of-vocabulary (the tokenizer's unused PAD/MASK/CLS/SEP get probability 0), so an exported
model keeps its scores and its OOV set: an unseen id's probability is the smoothing's floor,
which is `<unk>`'s. An unseen id whose probability differs from `<unk>`'s (possible only when
`<unk>` itself occurred in training) is listed, and then counts as known after the round trip.

A file that leaves out the (n-1)-gram prefix of some n-gram (pruned by another toolkit) is
completed the way KenLM does: the prefix is added with its backed-off probability and backoff
1, which changes no score.

Token strings from a subword tokenizer can hold spaces or newlines, which ARPA cannot: such
characters and backslashes are escaped (`\\s`, `\\n`, `\\t`, `\\r`, `\\\\`, `\\uXXXX`) so every
token stays one ARPA word; the tokenizer's BOS/EOS/UNK are written as `<s>`, `</s>`, `<unk>`.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from lmcore.data.atomic import write_atomic
from lmcore.models.ngram import LN10, NGramConfig, NGramLM
from lmcore.models.ngram_vocab import (
    BOS,
    EOS,
    UNK,
    Vocab,
    tokenizer_vocab,
)

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer

ZERO_LOG10 = -99.0
_FIELDS = re.compile(r"[^ \t\r\n]+").findall  # KenLM's kARPASpaces: tab, LF, CR, space


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


def listed_unigrams(model: NGramLM) -> np.ndarray:
    """(V,) bool: the unigrams an ARPA file lists (seen ids, `<s>`, `</s>`, `<unk>`, and any id
    whose probability `read_arpa` could not restore from `<unk>`'s)."""
    v, V, N = model.vocab, model.vocab_size, model.order
    lp = model.lp[0]
    listed = model.known.copy()
    listed[[v.bos, v.eos, v.unk]] = True
    for n in range(2, N + 1):  # every word inside a stored n-gram
        listed[model.keys[n - 1] % V] = True
    if N >= 2:
        listed[model.keys[1] // V] = True
        listed |= model.bo[0] != 0
    reserved = np.zeros(V, dtype=bool)
    reserved[list(v.reserved)] = True
    implied = np.where(reserved, -np.inf, lp[v.unk])  # what read_arpa gives an unlisted id
    listed |= lp != implied
    return listed


def write_arpa(model: NGramLM, dest: str | Path | TextIO, digits: int = 8) -> None:
    """Write `model` as an ARPA file (log10 values with `digits` significant digits)."""
    if isinstance(dest, str | Path):  # atomically: a failed or killed write leaves no half file

        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                write_arpa(model, f, digits)

        write_atomic(dest, write)
        return
    f = dest
    words = np.array(model.vocab.words, dtype=object)
    N = model.order
    rows1 = np.flatnonzero(listed_unigrams(model))
    f.write("\\data\\\n")
    for n in range(1, N + 1):
        f.write(f"ngram {n}={len(rows1) if n == 1 else len(model.keys[n - 1])}\n")
    for n in range(1, N + 1):
        f.write(f"\n\\{n}-grams:\n")
        W = ngram_words(model, n)
        lp10 = model.lp[n - 1] / LN10
        bo10 = model.bo[n - 1] / LN10 if n < N else None
        if n == 1:
            lp10 = lp10.copy()
            lp10[model.vocab.bos] = 0.0  # KenLM writes <s> with 0; it is never predicted
            W, lp10 = W[rows1], lp10[rows1]
            bo10 = bo10[rows1] if bo10 is not None else None
        names = words[W[:, 0]]
        for c in range(1, n):
            names = names + " " + words[W[:, c]]
        cols = [_fmt(lp10, digits), names.tolist()]
        if bo10 is not None:
            cols.append(_fmt(bo10, digits))
        f.write("\n".join("\t".join(parts) for parts in zip(*cols, strict=True)))
        f.write("\n")
    f.write("\n\\end\\\n")


def arpa_string(model: NGramLM, digits: int = 8) -> str:
    """The ARPA text of `model` (for downloads)."""
    buf = io.StringIO()
    write_arpa(model, buf, digits)
    return buf.getvalue()


class _Lines:
    """Where one section's rows lie in the file: its header line and the blank lines inside,
    so row i's line number is found on an error without storing one number per row."""

    def __init__(self, header: int):
        self.header = header
        self.blanks: list[int] = []

    def of(self, row: int) -> int:
        line = self.header + 1 + row
        for b in self.blanks:  # in file order
            if b <= line:
                line += 1
        return line


def _parse(lines) -> tuple[list[int], list[list[list[str]]], list[_Lines]]:
    """Declared counts, per order the split lines of its section, and where they lie."""
    declared: list[int] = []
    sections: list[list[list[str]]] = []
    where: list[_Lines] = []
    state = "start"
    current: list[list[str]] = []
    for lineno, raw in enumerate(lines, start=1):
        if state == "grams" and raw[:1] not in ("\\", "\n", "\r", ""):
            current.append(_FIELDS(raw))  # the hot path: one n-gram line
            continue
        line = raw.strip()
        if not line:
            if state == "grams":
                where[-1].blanks.append(lineno)
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
            current = []
            sections.append(current)
            where.append(_Lines(lineno))
            state = "grams"
            continue
        if state == "data":
            m = re.fullmatch(r"ngram\s+(\d+)\s*=\s*(\d+)", line)
            if not m:
                raise ValueError(f"ARPA line {lineno}: expected 'ngram N=COUNT', got {line!r}")
            declared.append(int(m.group(2)))
            continue
        current.append(_FIELDS(raw))
    if state == "start":
        raise ValueError("not an ARPA file: no \\data\\ header")
    if state != "end":
        raise ValueError("truncated ARPA file: no \\end\\ marker")
    return declared, sections, where


def read_arpa(src: str | Path | TextIO, tokenizer: Tokenizer | None = None) -> NGramLM:
    """Load an ARPA file as an `NGramLM` (over a tokenizer's ids when one is given)."""
    if isinstance(src, str | Path):
        # newline="\n": only LF ends a line (a CR is a field separator, as in KenLM)
        with open(src, encoding="utf-8", newline="\n") as f:
            return read_arpa(f, tokenizer)
    declared, sections, where = _parse(src)
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
    parsed = [_section(n, rows, index, tokenizer is not None, at)
              for n, (rows, at) in enumerate(zip(sections, where, strict=True), start=1)]
    listed = np.zeros(V, dtype=bool)
    listed[parsed[0][0][:, 0]] = True
    # an id the file does not list: <unk>'s probability (a tokenizer's unused specials: 0)
    floor = np.full(V, -np.inf)
    unk_row = np.flatnonzero(parsed[0][0][:, 0] == vocab.unk)
    if len(unk_row):
        floor[:] = parsed[0][1][unk_row[0]]
    floor[list(vocab.reserved)] = -np.inf
    hidden = 0
    try:
        keys, lps, bos = _build(parsed, V, vocab.bos, floor)
    except _MissingPrefix:  # rare (pruned files): find and add every missing prefix
        hidden = _add_missing_prefixes(parsed)
        keys, lps, bos = _build(parsed, V, vocab.bos, floor)
    known = listed & np.isfinite(lps[0])
    known[vocab.unk] = False
    config = NGramConfig(order=N, smoothing="arpa")
    model = NGramLM(config, vocab, keys, lps, bos[:N - 1], known=known, tokenizer=tokenizer)
    model.hidden_prefixes = hidden
    return model


class _MissingPrefix(ValueError):
    """An n-gram whose (n-1)-gram prefix is not in the file."""


def _build(parsed: list[tuple[np.ndarray, np.ndarray, np.ndarray]], V: int, bos_id: int,
           floor: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Sorted hierarchical keys, log-probabilities and backoffs per order (`floor`: the
    log-probability of each id the file does not list)."""
    keys, lps, bos = [], [], []
    for n, (W, lp, bo) in enumerate(parsed, start=1):
        if n == 1:
            dense_lp, dense_bo = floor.copy(), np.zeros(V)
            dense_lp[W[:, 0]], dense_bo[W[:, 0]] = lp, bo
            dense_lp[bos_id] = -np.inf
            keys.append(np.arange(V, dtype=np.int64))
            lps.append(dense_lp)
            bos.append(dense_bo)
            continue
        row = W[:, 0]
        for j in range(2, n):
            row = _find(keys[j - 1], row * V + W[:, j - 1])
        key = row * V + W[:, n - 1]
        order = np.argsort(key, kind="stable")
        key, W, lp, bo = key[order], W[order], lp[order].copy(), bo[order]
        if np.any(key[1:] == key[:-1]):
            raise ValueError(f"the ARPA file lists a {n}-gram twice")
        for i in np.flatnonzero(np.isnan(lp)):  # a prefix the file left out: back off
            ctx = int(key[i] // V)  # row of the prefix's own context in the order below
            lp[i] = bos[n - 2][ctx] + _backoff_logprob(keys, lps, bos, V, W[i, 1:-1].tolist(),
                                                       int(W[i, -1]))
        keys.append(key)
        lps.append(lp)
        bos.append(bo)
    return keys, lps, bos


def _section(n: int, rows: list[list[str]], index: dict[str, int], with_tokenizer: bool,
             at: _Lines) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, n) word ids, natural-log probabilities and backoffs of one order's lines.

    A log10 probability must be a number <= 0 (-inf, or -99 and below, is probability 0), a
    backoff weight a number below +inf: a positive log10 probability once gave a perplexity
    of 0.53 and -0.92 bits per character, and NaN or +inf slipped through too. Each refusal
    names the line.
    """
    if any(len(r) not in (n + 1, n + 2) for r in rows):
        i = next(i for i, r in enumerate(rows) if len(r) not in (n + 1, n + 2))
        raise ValueError(f"ARPA line {at.of(i)}: a {n}-gram line needs a log10 probability, "
                         f"{n} word{'s' if n > 1 else ''} and an optional backoff, got "
                         f"{' '.join(rows[i])!r}")
    try:
        lp10 = np.array([float(r[0]) for r in rows], dtype=np.float64)
        bo10 = np.array([float(r[n + 1]) if len(r) == n + 2 else 0.0 for r in rows])
    except ValueError:
        i = next(i for i, r in enumerate(rows) if not _is_number(r[0])
                 or (len(r) == n + 2 and not _is_number(r[n + 1])))
        raise ValueError(f"ARPA line {at.of(i)}: bad number in {' '.join(rows[i])!r}") from None
    bad = ~(lp10 <= 0) | ~(bo10 < np.inf)  # NaN fails both comparisons
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = ("log10 probability" if not lp10[i] <= 0 else "backoff weight")
        value = lp10[i] if not lp10[i] <= 0 else bo10[i]
        why = "must be a number <= 0 (a probability of at most 1)" if what[0] == "l" \
            else "must be a finite number"
        raise ValueError(f"ARPA line {at.of(i)}: {what} {value} {why}, in "
                         f"{' '.join(rows[i])!r}")
    try:
        W = np.fromiter((index[w] for r in rows for w in r[1:n + 1]), dtype=np.int64,
                        count=len(rows) * n).reshape(len(rows), n)
    except KeyError as exc:
        i = next(i for i, r in enumerate(rows) if any(w not in index for w in r[1:n + 1]))
        raise ValueError(f"ARPA line {at.of(i)}: word {exc.args[0]!r} is not in the vocabulary"
                         + (" of the tokenizer" if with_tokenizer else "")) from None
    lp = np.where(lp10 <= ZERO_LOG10, -np.inf, lp10 * LN10)
    bo = np.where(bo10 <= ZERO_LOG10, -np.inf, bo10 * LN10)
    return W, lp, bo


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _add_missing_prefixes(parsed: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> int:
    """Add each n-gram's missing (n-1)-gram prefix (as KenLM does); its p is computed later.

    Some toolkits prune an n-gram but keep its extensions. The inserted prefix gets a NaN
    probability (filled in by backing off) and backoff 1, which leaves every score unchanged.
    """
    added = 0
    for n in range(len(parsed), 2, -1):
        W, _, _ = parsed[n - 1]
        Wp, lp, bo = parsed[n - 2]
        have = set(map(tuple, Wp.tolist()))
        missing = sorted(set(map(tuple, W[:, :-1].tolist())) - have)
        if missing:
            parsed[n - 2] = (np.vstack([Wp, np.array(missing, dtype=np.int64)]),
                             np.concatenate([lp, np.full(len(missing), np.nan)]),
                             np.concatenate([bo, np.zeros(len(missing))]))
            added += len(missing)
    return added


def _find(table: np.ndarray, key: np.ndarray) -> np.ndarray:
    i = np.minimum(np.searchsorted(table, key), len(table) - 1)
    if np.any(table[i] != key):
        raise _MissingPrefix("an ARPA n-gram's prefix is missing from the file")
    return i


def _backoff_logprob(keys: list[np.ndarray], lps: list[np.ndarray], bos: list[np.ndarray],
                     V: int, context: list[int], w: int) -> float:
    """ln p(w | context) from the orders loaded so far (the ARPA back-off rule)."""
    h = context[-(len(keys) - 1):] if len(keys) > 1 else []
    cur = float(lps[0][w])
    for j in range(1, len(h) + 1):
        row = h[-j]
        for m in range(2, j + 1):
            i = int(np.searchsorted(keys[m - 1], row * V + h[-j + m - 1]))
            if i >= len(keys[m - 1]) or keys[m - 1][i] != row * V + h[-j + m - 1]:
                return cur
            row = i
        key = row * V + w
        i = int(np.searchsorted(keys[j], key))
        cur = float(lps[j][i]) if i < len(keys[j]) and keys[j][i] == key \
            else float(bos[j - 1][row]) + cur
    return cur
