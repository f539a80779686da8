"""Denoising for the encoder-decoder: the encoder reads corrupted text, the decoder rewrites it.

BART's text infilling (Lewis et al. 2020): spans of the window (`rate` of its tokens, mean span
length `mean_span`, T5's random segmentation) are each replaced by one [MASK] in the encoder's
input; the decoder, reading [BOS] and the original tokens so far, reconstructs the whole
window, loss on every token. So that the model also learns to continue a text (what the fair
table and the generation demo ask of it), a share `sequential` of the samples mask the
window's tail from a random point on instead (UL2's S-denoiser, Tay et al. 2022); those
samples are exactly prefix-LM samples, the prefix read by the encoder.

A training sample is a window of context + 1 tokens (as for the causal model): the decoder
reads [BOS] and the first `context` of them and predicts all context + 1; the encoder's input
is at most `context` long.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lmcore.data.tokenizers import BOS_ID, MASK_ID, PAD_ID


@dataclass
class Noised:
    """A batch's encoder inputs (padded), their mask, and which window tokens were hidden."""

    src: torch.Tensor  # (B, S) encoder ids, PAD after each sample's end
    src_mask: torch.Tensor  # (B, S) bool, True = real token
    hidden: torch.Tensor  # (B, W) bool: tokens of the window the encoder did not see


def decoder_input(windows: torch.Tensor) -> torch.Tensor:
    """[BOS] + window[:-1]: (B, W) decoder inputs whose targets are the window itself."""
    bos = torch.full_like(windows[:, :1], BOS_ID)
    return torch.cat([bos, windows[:, :-1]], dim=1)


def pack(sources: list[list[int]], device: torch.device | None = None
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists to one (B, S) tensor and its True-for-real-token mask."""
    S = max(len(s) for s in sources)
    src = torch.full((len(sources), S), PAD_ID, dtype=torch.long)
    mask = torch.zeros(len(sources), S, dtype=torch.bool)
    for i, s in enumerate(sources):
        src[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, :len(s)] = True
    return src.to(device), mask.to(device)


def prefix_source(window: torch.Tensor, P: int) -> list[int]:
    """The encoder input that shows the first P tokens and hides the rest: w[:P] + [MASK]."""
    return window[:P].tolist() + [MASK_ID]


def _segments(total: int, k: int, gen: torch.Generator | None) -> list[int]:
    """`total` split into k positive lengths at random cut points (T5's random_segmentation)."""
    if k <= 1:
        return [total]
    cuts = sorted((torch.randperm(total - 1, generator=gen)[:k - 1] + 1).tolist())
    edges = [0, *cuts, total]
    return [b - a for a, b in zip(edges, edges[1:], strict=False)]


@dataclass
class Denoising:
    """Encoder-decoder objective: span infilling, plus tail masking for `sequential` samples."""

    rate: float = 0.15
    mean_span: float = 3.0
    sequential: float = 0.5
    name: str = "encdec"
    mask: str = "encoder-decoder"

    def __post_init__(self) -> None:
        if not 0 < self.rate < 1:
            raise ValueError(f"the noise rate must lie in (0, 1), got {self.rate}")
        if self.mean_span < 1:
            raise ValueError(f"the mean span length must be at least 1, got {self.mean_span}")
        if not 0 <= self.sequential <= 1:
            raise ValueError(f"the sequential share must lie in [0, 1], got {self.sequential}")

    def window(self, context: int) -> int:
        return context + 1

    def infill_source(self, window: torch.Tensor, gen: torch.Generator | None
                      ) -> tuple[list[int], torch.Tensor]:
        """Span-infilled encoder input of one window and its hidden-token mask. At least one
        span is two tokens long, so the input is shorter than the window (fits the context)."""
        W = len(window)
        n = min(W - 1, max(2, round(self.rate * W)))
        k = max(1, min(round(n / self.mean_span), n - 1, W - n))
        noise = _segments(n, k, gen)
        keep = _segments(W - n, k, gen)
        src, hidden, pos = [], torch.zeros(W, dtype=torch.bool), 0
        for a, b in zip(keep, noise, strict=True):
            src += window[pos:pos + a].tolist()
            pos += a
            src.append(MASK_ID)
            hidden[pos:pos + b] = True
            pos += b
        return src, hidden

    def corrupt(self, windows: torch.Tensor, gen: torch.Generator | None = None) -> Noised:
        """Encoder inputs for (B, W) windows: tail-masked with prob. `sequential`, else infilled."""
        B, W = windows.shape
        if W < 3:
            raise ValueError("denoising needs windows of at least 3 tokens")
        cpu = windows.cpu()
        sources, hidden = [], torch.zeros(B, W, dtype=torch.bool)
        tail = torch.rand(B, generator=gen) < self.sequential
        starts = torch.randint(1, W - 1, (B,), generator=gen)  # P in 1..W-2: src <= W - 1
        for i in range(B):
            if bool(tail[i]):
                P = int(starts[i])
                sources.append(prefix_source(cpu[i], P))
                hidden[i, P:] = True
            else:
                s, h = self.infill_source(cpu[i], gen)
                sources.append(s)
                hidden[i] = h
        src, mask = pack(sources, windows.device)
        return Noised(src, mask, hidden.to(windows.device))

    def loss(self, model: torch.nn.Module, batch: torch.Tensor,
             gen: torch.Generator | None = None) -> torch.Tensor:
        n = self.corrupt(batch, gen)
        logits = model(n.src, decoder_input(batch), n.src_mask)  # (B, W, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.reshape(-1))
