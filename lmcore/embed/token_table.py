"""A trained Transformer's token embedding table (wte) as word vectors.

The table holds one vector per token of its tokenizer. So that it can be compared with word2vec
unit by unit, each token is named by its text with the tokenizer's space marker removed
('Ġcat', '␣cat', '##cat' -> 'cat'); only tokens that are letters/digits are kept (spaces and
punctuation have no word2vec counterpart), and when two tokens name the same text the more
frequent one stays. With a char tokenizer the units are characters, with word/BPE mostly words.
"""

from __future__ import annotations

import numpy as np

from lmcore.embed.vectors import WordVectors

_MARKERS = ("Ġ", "␣", "▁", "##", " ")


def token_name(token: str) -> str:
    """The token's text without the tokenizer's leading space/continuation marker."""
    for m in _MARKERS:
        if token.startswith(m):
            return token[len(m):]
    return token


def token_vectors(model, tokenizer, text: str) -> WordVectors:
    """The model's input embedding rows of every letter/digit token, with its count in `text`.

    `model` is a lmcore `Transformer` (or a `TransformerLM`, whose network is used).
    """
    net = getattr(model, "model", model)
    weight = net.wte.weight.detach().float().cpu().numpy()  # (V, C)
    if weight.shape[0] != tokenizer.vocab_size:
        raise ValueError(f"the model has {weight.shape[0]} token rows but the tokenizer "
                         f"{tokenizer.vocab_size} tokens: they do not belong together")
    counts = np.bincount(np.asarray(tokenizer.encode(text), dtype=np.int64),
                         minlength=weight.shape[0])
    best: dict[str, int] = {}
    for i in range(7, weight.shape[0]):  # 0..6 are the special tokens
        name = token_name(tokenizer.id_to_token(i))
        if name and name.isalnum() and (name not in best or counts[i] > counts[best[name]]):
            best[name] = i
    if len(best) < 2:
        raise ValueError("the tokenizer has fewer than two letter/digit tokens to compare")
    names = list(best)
    ids = np.array([best[n] for n in names])
    return WordVectors(names, counts[ids], weight[ids],
                       source=f"Transformer token table ({tokenizer.kind} tokens)")
