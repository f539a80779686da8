"""Effective rank: exact on the identity and a rank-one matrix, bounded per attention head."""

from __future__ import annotations

import math

import torch
from objective_models import V, tiny

from lmcore.data.tokenizers import N_SPECIAL
from lmcore.train.effective_rank import attention_effective_ranks, effective_rank


def test_effective_rank():
    assert math.isclose(float(effective_rank(torch.eye(6))), 6.0, rel_tol=1e-9)
    one = torch.ones(5, 1) @ torch.rand(1, 5)
    assert math.isclose(float(effective_rank(one)), 1.0, rel_tol=1e-6)
    r = attention_effective_ranks(tiny(), torch.randint(N_SPECIAL, V, (2, 8)))
    assert r.shape == (2, 2) and ((r >= 1) & (r <= 8)).all()
