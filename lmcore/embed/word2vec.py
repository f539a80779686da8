"""Skip-gram with negative sampling (word2vec, Mikolov et al. 2013) in torch.

Each unit w has an input vector v_w and an output vector u_w. For a centre unit c and a unit o
within its (randomly shrunk) window, the loss is -log σ(u_o·v_c) - Σ_j log σ(-u_j·v_c) over
`negatives` units j drawn from the unigram distribution raised to 3/4. Frequent units are
subsampled (kept with probability sqrt(t / f) + t / f). The input vectors are the embedding.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lmcore.embed.vectors import UNITS, WordVectors, split_units


@dataclass(frozen=True)
class Word2VecConfig:
    """The skip-gram model and its training budget."""

    unit: str = "word"  # word | char (Chinese: char)
    dim: int = 64
    window: int = 4  # largest distance between centre and context
    negatives: int = 5
    min_count: int = 3  # units seen fewer times are dropped
    max_vocab: int = 5000  # keep the most frequent units
    epochs: int = 5
    batch_size: int = 2048  # (centre, context) pairs per step
    lr: float = 0.02  # Adam
    subsample: float = 1e-3  # t in the keep probability; 0 keeps everything
    seed: int = 0

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {self.unit!r}")
        for name in ("dim", "window", "negatives", "min_count", "max_vocab", "epochs",
                     "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"the learning rate must be positive, got {self.lr}")


class SkipGram(torch.nn.Module):
    """Input (centre) and output (context) tables; score(c, o) = v_c · u_o."""

    def __init__(self, vocab: int, dim: int):
        super().__init__()
        self.inp = torch.nn.Embedding(vocab, dim)
        self.out = torch.nn.Embedding(vocab, dim)
        torch.nn.init.uniform_(self.inp.weight, -0.5 / dim, 0.5 / dim)
        torch.nn.init.zeros_(self.out.weight)

    def forward(self, centre: torch.Tensor, context: torch.Tensor,
                negative: torch.Tensor) -> torch.Tensor:
        """Mean SGNS loss of (B,) centres, (B,) contexts and (B, K) negatives."""
        v = self.inp(centre)  # (B, D)
        pos = (self.out(context) * v).sum(-1)  # (B,)
        neg = torch.bmm(self.out(negative), v.unsqueeze(-1)).squeeze(-1)  # (B, K)
        return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean()


def build_vocab(units: list[str], config: Word2VecConfig) -> tuple[list[str], np.ndarray]:
    """Units seen at least `min_count` times, the `max_vocab` most frequent, and their counts."""
    counts = Counter(units)
    kept = [(w, c) for w, c in counts.most_common() if c >= config.min_count]
    kept = kept[: config.max_vocab]
    if len(kept) < 2:
        raise ValueError(f"only {len(kept)} unit(s) occur {config.min_count}+ times: the text "
                         "is too short for word vectors (lower min_count or load more text)")
    return [w for w, _ in kept], np.array([c for _, c in kept], dtype=np.int64)


def skipgram_pairs(ids: np.ndarray, window: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(centre, context) pairs within a window shrunk per centre to 1..window (word2vec's
    dynamic window, which weights near units more)."""
    reach = rng.integers(1, window + 1, len(ids))
    cs, os_ = [], []
    for d in range(1, window + 1):
        left = np.arange(d, len(ids))
        keep = reach[left] >= d
        cs.append(ids[left[keep]])
        os_.append(ids[left[keep] - d])
        right = np.arange(0, len(ids) - d)
        keep = reach[right] >= d
        cs.append(ids[right[keep]])
        os_.append(ids[right[keep] + d])
    return np.concatenate(cs), np.concatenate(os_)


def train_word2vec(text: str, config: Word2VecConfig | None = None,
                   progress: Callable[[float, str], None] | None = None,
                   stop: threading.Event | None = None,
                   on_loss: Callable[[int, float], None] | None = None) -> WordVectors:
    """Train skip-gram with negative sampling on `text`; return the input vectors."""
    config = config or Word2VecConfig()
    units = split_units(text, config.unit)
    words, counts = build_vocab(units, config)
    index = {w: i for i, w in enumerate(words)}
    stream = np.array([index[u] for u in units if u in index], dtype=np.int64)
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model = SkipGram(len(words), config.dim)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    noise = torch.tensor(counts, dtype=torch.float64) ** 0.75
    noise /= noise.sum()
    freq = counts / counts.sum()
    keep_p = (np.minimum(1.0, np.sqrt(config.subsample / freq) + config.subsample / freq)
              if config.subsample > 0 else np.ones(len(words)))
    step = 0
    for epoch in range(config.epochs):
        kept = stream[rng.random(len(stream)) < keep_p[stream]]
        c, o = skipgram_pairs(kept, config.window, rng)
        order = rng.permutation(len(c))
        c_t, o_t = torch.from_numpy(c[order]), torch.from_numpy(o[order])
        batches = max(1, -(-len(c) // config.batch_size))
        for b in range(batches):
            if stop is not None and stop.is_set():
                break
            sl = slice(b * config.batch_size, (b + 1) * config.batch_size)
            cb, ob = c_t[sl], o_t[sl]
            if len(cb) == 0:
                continue
            neg = torch.multinomial(noise, len(cb) * config.negatives, replacement=True,
                                    generator=gen).view(len(cb), config.negatives)
            loss = model(cb, ob, neg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            value = float(loss.detach())
            if on_loss is not None and (b % 20 == 0 or b == batches - 1):
                on_loss(step, value)
            if progress is not None and b % 20 == 0:
                progress((epoch + b / batches) / config.epochs,
                         f"epoch {epoch + 1}/{config.epochs} · loss {value:.3f}")
        if stop is not None and stop.is_set():
            break
    if progress is not None:
        progress(1.0, "done")
    return WordVectors(words, counts, model.inp.weight.detach().numpy().copy(),
                       source=f"word2vec ({config.unit} units)")
