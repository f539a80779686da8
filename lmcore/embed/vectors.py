"""A table of word vectors and what one does with it: cosine neighbours, analogies, PCA.

Static embeddings (word2vec's or a Transformer's token table) give each unit one vector, so
the similarity of two units is the cosine of their vectors; `a - b + c` finds the unit whose
vector is nearest to that offset (Mikolov et al. 2013's analogy test, 3CosAdd).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

UNITS = ("word", "char")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_WORD = re.compile(r"\w+")


def cjk_share(text: str) -> float:
    """Share of word characters that are CJK ideographs (0 for English, near 1 for Chinese)."""
    letters = _WORD.findall(text[:200_000])
    total = sum(len(w) for w in letters)
    return len(_CJK.findall(text[:200_000])) / total if total else 0.0


def pick_unit(text: str) -> str:
    """'char' for text written without spaces between words (Chinese, Japanese), else 'word'."""
    return "char" if cjk_share(text) > 0.3 else "word"


def split_units(text: str, unit: str) -> list[str]:
    """The text as a list of units: 'word' = runs of letters/digits (\\w+, case kept; a run of
    Chinese characters would be one 'word', so Chinese uses 'char'), 'char' = every
    letter/digit character on its own (punctuation and spaces dropped)."""
    if unit == "word":
        return _WORD.findall(text)
    if unit == "char":
        return [c for c in text if c.isalnum()]
    raise ValueError(f"unknown unit {unit!r}; choose one of {', '.join(UNITS)}")


@dataclass
class WordVectors:
    """One vector per unit, with how often each unit occurs in the text they came from."""

    words: list[str]
    counts: np.ndarray  # (V,) occurrences in the training text
    vectors: np.ndarray  # (V, D) float32
    source: str = ""  # e.g. "word2vec (word units)"

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        self.counts = np.asarray(self.counts, dtype=np.int64)
        if len(self.words) != len(self.vectors) or len(self.words) != len(self.counts):
            raise ValueError("words, counts and vectors must have one entry per unit")
        self.index = {w: i for i, w in enumerate(self.words)}
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        self.unit = self.vectors / np.maximum(norms, 1e-12)  # (V, D) unit length

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def _id(self, word: str) -> int:
        if word not in self.index:
            close = [w for w in self.words if w.lower() == word.lower()][:3]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(f"{word!r} is not in the {self.source or 'embedding'} vocabulary "
                             f"of {len(self.words):,} units{hint}")
        return self.index[word]

    def cosine(self, a: str, b: str) -> float:
        return float(self.unit[self._id(a)] @ self.unit[self._id(b)])

    def nearest(self, query: np.ndarray, k: int, exclude: set[int] = frozenset()
                ) -> list[tuple[str, float]]:
        q = query / max(float(np.linalg.norm(query)), 1e-12)
        sims = self.unit @ q  # (V,)
        order = np.argsort(-sims, kind="stable")
        out = []
        for i in order:
            if int(i) in exclude:
                continue
            out.append((self.words[int(i)], float(sims[i])))
            if len(out) == k:
                break
        return out

    def neighbours(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The k units of highest cosine similarity to `word` (itself excluded)."""
        i = self._id(word)
        return self.nearest(self.unit[i], k, {i})

    def analogy(self, a: str, b: str, c: str, k: int = 5) -> list[tuple[str, float]]:
        """Units nearest to a - b + c (unit-length vectors), a, b and c excluded:
        'king' - 'man' + 'woman' should give 'queen'."""
        ia, ib, ic = self._id(a), self._id(b), self._id(c)
        return self.nearest(self.unit[ia] - self.unit[ib] + self.unit[ic], k, {ia, ib, ic})

    def top(self, n: int) -> list[int]:
        """Ids of the n most frequent units."""
        return np.argsort(-self.counts, kind="stable")[:n].tolist()

    def pca(self, n: int = 300) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """The n most frequent units projected on the first two principal components of their
        unit vectors: (words, counts, (n, 2) coordinates, explained variance share of each)."""
        ids = self.top(n)
        X = self.unit[ids].astype(np.float64)
        X = X - X.mean(axis=0)
        if len(ids) < 2:
            return [self.words[i] for i in ids], self.counts[ids], np.zeros((len(ids), 2)), \
                np.zeros(2)
        _, s, vt = np.linalg.svd(X, full_matrices=False)
        coords = X @ vt[:2].T
        var = s ** 2
        share = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
        return [self.words[i] for i in ids], self.counts[ids], coords, share


def compare_neighbours(a: WordVectors, b: WordVectors, word: str, k: int = 10) -> dict:
    """Both tables' k nearest neighbours of `word`, searched within the units both know,
    and how many they share (overlap@k)."""
    common = [w for w in a.words if w in b.index]
    if word not in a.index or word not in b.index:
        missing = a.source if word not in a.index else b.source
        raise ValueError(f"{word!r} is not in the {missing} vocabulary")
    ia = np.array([a.index[w] for w in common])
    ib = np.array([b.index[w] for w in common])
    out = {}
    for name, vec, ids in (("a", a, ia), ("b", b, ib)):
        q = vec.unit[vec.index[word]]
        sims = vec.unit[ids] @ q
        order = [j for j in np.argsort(-sims, kind="stable") if common[j] != word][:k]
        out[name] = [(common[j], float(sims[j])) for j in order]
    shared = {w for w, _ in out["a"]} & {w for w, _ in out["b"]}
    return {"a": out["a"], "b": out["b"], "shared": sorted(shared), "common": len(common)}


def suggest_word(vectors: WordVectors, prefer: tuple[str, ...] = ("list", "function", "the")
                 ) -> str:
    """A good default query: a preferred word the table knows, else its most frequent unit of
    4+ characters (any unit for characters)."""
    for w in prefer:
        if w in vectors.index:
            return w
    for i in vectors.top(len(vectors.words)):
        if len(vectors.words[i]) >= 4:
            return vectors.words[i]
    return vectors.words[vectors.top(1)[0]]
