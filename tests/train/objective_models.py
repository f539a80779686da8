"""Tiny Transformers and token data shared by the objective tests (imported via conftest)."""

from __future__ import annotations

import torch

from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.train.data import TokenData

V = 20


def tiny(mask="causal", **kw) -> Transformer:
    torch.manual_seed(0)
    base = dict(vocab_size=V, context=16, n_layer=2, n_head=2, n_embd=16, mask=mask)
    return Transformer(TransformerConfig(**{**base, **kw})).eval()


def token_data(text: str, tok) -> TokenData:
    return TokenData.from_text(tok, text, text[: len(text) // 3])
