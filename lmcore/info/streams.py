"""A Transformer coder that runs B streams in lockstep: one batched forward per step, KV cache.

Coding with a Transformer one token at a time re-runs its whole window for every token
(0.1-0.2 kchar/s for a 4-layer width-128 model on a laptop CPU). Here the token sequence is
cut into B contiguous chunks (streams); step t asks the model, in one batched call, for the
next-token distribution of token t of every stream, and each stream keeps a KV cache, so a
step feeds one new token per stream instead of a window. The decoder does exactly the same
steps with the same shapes, so it sees bit-identical probabilities: this is why the encoder
does not use a single batched pass over all windows (CPU matrix kernels sum in a different
order for a (B, T) batch than for (B, 1) steps, and a range coder needs identical floats).

Windows follow `TransformerLM`: a stream's target at position p of [BOS] + chunk sees the
whole prefix while it fits in the context C, then windows that advance by the model's stride
(the cache is refilled from the window start when it slides). With one stream the
probabilities are those of `TransformerLM.next_logprobs` (up to float rounding); with B
streams each chunk starts from BOS, so the first tokens of every chunk cost a little more.
"""

from __future__ import annotations

import numpy as np
import torch

from lmcore.models.eval_mode import eval_mode
from lmcore.models.transformer import KVCache, TransformerLM

MIN_CHUNK = 512  # tokens per stream at least (fewer streams for short texts)
MAX_STREAMS = 64


def stream_count(n_tokens: int) -> int:
    """Streams for a text of n tokens: one per MIN_CHUNK tokens, 1 to MAX_STREAMS."""
    return max(1, min(MAX_STREAMS, n_tokens // MIN_CHUNK))


def chunk_lengths(n_tokens: int, streams: int) -> list[int]:
    """Lengths of the B contiguous chunks (the first n % B are one token longer)."""
    q, r = divmod(n_tokens, streams)
    return [q + (b < r) for b in range(streams)]


class Lockstep:
    """B streams of one Transformer stepped together (see the module docstring)."""

    def __init__(self, lm: TransformerLM, streams: int):
        self.lm, self.B = lm, streams
        self.net = lm.model
        self.device = next(self.net.parameters()).device
        self.full = torch.full((streams, 1), lm.bos_id, dtype=torch.long)  # (B, 1 + t)
        self.cache: KVCache | None = None
        self.start = 0  # where the cached window starts

    @torch.no_grad()
    def probs(self) -> np.ndarray:
        """(B, V) float64 next-token probabilities of every stream."""
        p = self.full.shape[1]  # the target's position in [BOS] + chunk
        s = self.lm._window_start(p)
        if self.cache is None or s != self.start:
            self.cache = KVCache(self.net.config.n_layer, capacity=self.net.config.context)
            self.start = s
            x = self.full[:, s:p]  # (B, p - s): refill the window
        else:
            x = self.full[:, p - 1:p]  # (B, 1): the newest token only
        with eval_mode(self.net):  # (callers hold eval mode for a whole run: no toggle then)
            logits = self.net(x.to(self.device), mask="causal", cache=self.cache)[:, -1]
        return torch.log_softmax(logits.double(), dim=-1).exp().cpu().numpy()  # (B, V)

    def push(self, tokens: np.ndarray) -> None:
        """Append one token to every stream (finished streams get a filler token)."""
        col = torch.as_tensor(np.asarray(tokens, dtype=np.int64)).view(self.B, 1)
        self.full = torch.cat([self.full, col], dim=1)
