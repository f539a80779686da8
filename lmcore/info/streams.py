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
(the cache is refilled from the window start when it slides: one forward over the window,
then each step through `lmcore.models.decode_step`, which reads a cache laid out for single
queries: whole files code 13-23% faster than through `forward`). With one stream the
probabilities are those of `TransformerLM.next_logprobs` (up to float rounding); with B
streams each chunk starts from BOS, so the first tokens of every chunk cost a little more.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from lmcore.info.prefix import extends
from lmcore.models.decode_step import StepCache, decode_step
from lmcore.models.eval_mode import eval_mode
from lmcore.models.lm import LanguageModel
from lmcore.models.transformer import KVCache, TransformerLM
from lmcore.settings import available_cores

MIN_CHUNK = 512  # tokens per stream at least (fewer streams for short texts)
MAX_STREAMS = 64  # the default's cap
MOST_STREAMS = 1024  # what a caller may ask for: 0.5 MB of KV cache a stream at 4x128, C=128
# Torch threads of a lockstep run with at least BATCHED_STREAMS streams, on a machine with
# two cores or more. Measured on 2 cores, 4x128 char model, 64 streams: 6.6 kchar/s on one
# thread, 10.6 on two, the same bytes. A step of one or a few streams is latency-bound and
# stays on one thread (see lmcore.info.threads). The count is pinned and written in the header.
LOCKSTEP_THREADS = 2
BATCHED_STREAMS = 16


# Format 4 files step through `decode_step`; formats 2 and 3 through `Transformer.forward`
# with a KVCache, whose floats differ in the last bits. Their decoder asks for the old steps.
_FORWARD_STEPS = contextvars.ContextVar("lmcore_forward_steps", default=False)


@contextlib.contextmanager
def forward_steps(on: bool = True) -> Iterator[None]:
    """Within the block, Lockstep steps run `Transformer.forward` (files of formats 2, 3)."""
    token = _FORWARD_STEPS.set(on)
    try:
        yield
    finally:
        _FORWARD_STEPS.reset(token)


def lockstep_threads(streams: int, cores: int | None = None) -> int:
    """Torch threads to code `streams` lockstep streams on (1, or LOCKSTEP_THREADS)."""
    cores = available_cores() if cores is None else cores
    return LOCKSTEP_THREADS if streams >= BATCHED_STREAMS and cores >= 2 else 1


def stream_count(n_tokens: int, wanted: int | None = None) -> int:
    """Streams for a text of n tokens: `wanted` (1..MOST_STREAMS, at most one per token), or
    by default one per MIN_CHUNK tokens, 1 to MAX_STREAMS."""
    if wanted is not None:
        if not 1 <= int(wanted) <= MOST_STREAMS:
            raise ValueError(f"streams must lie in 1..{MOST_STREAMS} (each holds a KV cache), "
                             f"got {wanted}")
        return max(1, min(int(wanted), n_tokens))
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
        self.buf = torch.full((streams, 256), lm.bos_id, dtype=torch.long)  # (B, capacity)
        self.length = 1  # [BOS] + the tokens pushed: buf[:, :length]
        self.cache: KVCache | None = None  # the window's prefill (forward's layout)
        self.steps: StepCache | None = None  # the same, laid out for decode_step
        self.start = 0  # where the cached window starts

    @property
    def full(self) -> torch.Tensor:
        """(B, 1 + t) every stream's [BOS] + tokens so far."""
        return self.buf[:, :self.length]

    @torch.no_grad()
    def probs(self) -> np.ndarray:
        """(B, V) float64 next-token probabilities of every stream."""
        p = self.length  # the target's position in [BOS] + chunk
        s = self.lm._window_start(p)
        forward = _FORWARD_STEPS.get()
        with eval_mode(self.net):  # (callers hold eval mode for a whole run: no toggle then)
            if self.cache is None or s != self.start:  # refill the window: (B, p - s)
                room = self.net.config.context if forward else None  # steps append to it
                self.cache, self.start = KVCache(self.net.config.n_layer, capacity=room), s
                x = self.buf[:, s:p].to(self.device)
                logits = self.net(x, mask="causal", cache=self.cache)[:, -1]
                if not forward:  # the steps until the next refill read their own layout
                    self.steps = self.steps or StepCache(self.net, self.B)
                    self.steps.load(self.cache)
            elif forward:  # (B, 1): the newest token, through forward
                x = self.buf[:, p - 1:p].to(self.device)
                logits = self.net(x, mask="causal", cache=self.cache)[:, -1]
            else:  # the newest token, through decode_step
                logits = decode_step(self.net, self.buf[:, p - 1].to(self.device), self.steps)
        return torch.log_softmax(logits.double(), dim=-1).exp().cpu().numpy()  # (B, V)

    def push(self, tokens: np.ndarray) -> None:
        """Append one token to every stream (finished streams get a filler token)."""
        if self.length == self.buf.shape[1]:  # grow by doubling: amortised O(1) a token
            self.buf = torch.cat([self.buf, torch.empty_like(self.buf)], dim=1)
        self.buf[:, self.length] = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
        self.length += 1


class Stepper(LanguageModel):
    """A TransformerLM read left to right with a KV cache: one Lockstep stream.

    For a coder or mixer that asks `next_logprobs` after every token of a growing context,
    each call feeds the one new token instead of re-running the window (`TransformerLM`'s
    windows, so the same probabilities up to float rounding). Any other context starts the
    stream again from BOS. Encoder and decoder make the same calls, so they get the same
    floats (the coder pins the thread count). As in `lmcore.info.adaptive`, the very list
    passed last time, grown by appends, is extended without re-reading its head."""

    def __init__(self, lm: TransformerLM):
        self.lm, self.model = lm, lm.model  # `model`: the network, for the coder's pins
        self.vocab_size, self.tokenizer = lm.vocab_size, lm.tokenizer
        self._reset()

    def _reset(self) -> None:
        self._run = Lockstep(self.lm, 1)
        self._ctx: list[int] = []
        self._last: list | None = None  # the list object passed last time
        self._pending = False  # a token pushed that the cache has not taken yet
        self._out: np.ndarray | None = None  # log-probabilities after _ctx

    def next_logprobs(self, context: Sequence[int]) -> np.ndarray:
        n = len(self._ctx)
        if not extends(context, self._ctx, self._last):
            self._reset()
            n = 0
        self._last = context if isinstance(context, list) else None
        for x in context[n:]:
            if self._pending:  # the cache takes one token per step
                self._run.probs()
            self._run.push(np.asarray([int(x)]))
            self._ctx.append(int(x))
            self._pending, self._out = True, None
        if self._out is None:
            with np.errstate(divide="ignore"):
                self._out = np.log(self._run.probs()[0])
            self._pending = False
        return self._out

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        self._reset()
        ctx: list[int] = []
        out = np.empty(len(ids), dtype=np.float64)
        for t, x in enumerate(ids):
            out[t] = self.next_logprobs(ctx)[int(x)]
            ctx.append(int(x))
        self._reset()
        return out

    def fingerprint(self) -> str:
        return self.lm.fingerprint()

    def num_parameters(self) -> int:
        return self.lm.num_parameters()
