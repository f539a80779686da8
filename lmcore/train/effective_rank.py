"""Effective rank of attention matrices: how many directions an attention map really uses.

effective rank (Roy & Vetterli 2007) = exp(H(p)), p_i = σ_i / Σσ, the entropy of the
normalised singular values. It is n for a matrix with n equal singular values and 1 for a
rank-one matrix. A causal attention matrix is lower-triangular with a positive diagonal
(always full rank, though possibly ill-conditioned); a bidirectional one has no such
structure, which is why encoders are said to be more prone to low-rank ("collapsed")
attention. The lab measures it on the same text for each trained model instead of asserting it.
"""

from __future__ import annotations

import numpy as np
import torch

from lmcore.models.eval_mode import eval_mode


def effective_rank(matrix: torch.Tensor) -> torch.Tensor:
    """exp(entropy of normalised singular values) of each (..., n, m) matrix -> (...)."""
    s = torch.linalg.svdvals(matrix.double())  # (..., min(n, m))
    p = s / s.sum(-1, keepdim=True).clamp_min(1e-300)
    h = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)
    return torch.exp(h)


@torch.no_grad()
def attention_effective_ranks(model: torch.nn.Module, windows: torch.Tensor,
                              mask: str | None = None,
                              prefix_len: torch.Tensor | None = None) -> np.ndarray:
    """(L, H) mean effective rank of each layer's and head's attention over windows (N, T)."""
    with eval_mode(model):
        kw = {"mask": mask} if mask is not None else {}
        if prefix_len is not None:
            kw["prefix_len"] = prefix_len
        _, weights = model(windows, return_attention=True, **kw)  # L x (N, H, T, T)
    return np.stack([effective_rank(w).mean(0).cpu().numpy() for w in weights])  # (L, H)


@torch.no_grad()
def encoder_effective_ranks(model: torch.nn.Module, windows: torch.Tensor) -> np.ndarray:
    """(L_enc, H) mean effective rank of an encoder-decoder's encoder attention on (N, T)."""
    with eval_mode(model):
        _, weights = model.encode(windows, return_attention=True)  # L x (N, H, T, T)
    return np.stack([effective_rank(w).mean(0).cpu().numpy() for w in weights])  # (L, H)
