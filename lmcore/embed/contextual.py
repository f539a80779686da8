"""Contextual vectors: one word's hidden states in different sentences, and how far apart.

A static table (word2vec, wte) gives a word the same vector everywhere; a Transformer's hidden
state at the word depends on the text around it (what made BERT replace word2vec). For each
occurrence the snippet around it is run through the model (its own mask: a causal model sees
only the left context, a bidirectional one both sides), and the final hidden states (after the
last norm) of the tokens covering the word are averaged into one vector.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from lmcore.embed.vectors import _CJK
from lmcore.models.eval_mode import eval_mode


@dataclass
class ContextualResult:
    """Occurrences of one word, their hidden vectors and pairwise cosine similarities."""

    word: str
    snippets: list[str]
    spans: list[tuple[int, int]]  # the word's place inside each snippet
    vectors: np.ndarray  # (m, C) final hidden states averaged over the word's tokens
    cosine: np.ndarray  # (m, m)
    static_cosine: float  # the same measure for the token-table vectors (1: one vector)

    @property
    def mean_cosine(self) -> float:
        m = len(self.snippets)
        if m < 2:
            return 1.0
        return float((self.cosine.sum() - np.trace(self.cosine)) / (m * (m - 1)))


def occurrences(text: str, word: str, limit: int, left: int = 120, right: int = 40
                ) -> list[tuple[str, tuple[int, int]]]:
    """Up to `limit` snippets of `text` around whole-word matches of `word` (any substring
    for Chinese), spread over the text, with the word's span inside each snippet."""
    if not word.strip():
        raise ValueError("type a word to look for")
    pat = re.escape(word) if _CJK.search(word) else rf"(?<!\w){re.escape(word)}(?!\w)"
    hits = [m.span() for m in re.finditer(pat, text)]
    if not hits:
        raise ValueError(f"{word!r} does not occur in the text")
    pick = np.unique(np.linspace(0, len(hits) - 1, min(limit, len(hits))).round().astype(int))
    out = []
    for j in pick:
        s, e = hits[j]
        a, b = max(0, s - left), min(len(text), e + right)
        out.append((text[a:b], (s - a, e - a)))
    return out


def contextual_vectors(model, tokenizer, text: str, word: str, limit: int = 6
                       ) -> ContextualResult:
    """Hidden vectors of `word` in up to `limit` places of `text` under a lmcore Transformer."""
    net = getattr(model, "model", model)
    C = net.config.context
    device = next(net.parameters()).device
    vecs, snippets, spans, static = [], [], [], []
    for snippet, (s, e) in occurrences(text, word, limit):
        ids, offsets = tokenizer.encode_offsets(snippet)
        cover = [i for i, (a, b) in enumerate(offsets) if a < e and b > s]
        if not cover:
            continue
        end = min(len(ids), cover[-1] + 1 + max(0, C // 4))  # a little right context
        start = max(0, end - C)
        cover = [i - start for i in cover if i >= start]
        x = torch.tensor([ids[start:end]], dtype=torch.long, device=device)  # (1, T)
        with eval_mode(net), torch.no_grad():
            h = net.hidden(x, mask=net.config.mask if net.config.mask != "prefix" else "causal")
        vecs.append(h[0, cover].mean(0).double().cpu().numpy())  # (C,)
        static.append(net.wte.weight[[ids[start + i] for i in cover]].mean(0)
                      .detach().double().cpu().numpy())
        snippets.append(snippet)
        spans.append((s, e))
    if not vecs:
        raise ValueError(f"the tokenizer gives no token for {word!r}")
    V = np.stack(vecs)
    U = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
    S = np.stack(static)
    S = S / np.maximum(np.linalg.norm(S, axis=1, keepdims=True), 1e-12)
    m = len(S)
    static_cos = 1.0 if m < 2 else float(((S @ S.T).sum() - m) / (m * (m - 1)))
    return ContextualResult(word, snippets, spans, V, U @ U.T, static_cos)
