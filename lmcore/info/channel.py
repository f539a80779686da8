"""Noisy binary channels (symmetric and erasure), their capacity, and text sent as bits.

Shannon's second theorem: a channel of capacity C carries any rate R < C with an error
probability a long enough code drives towards 0, and no code does so above C. For the binary
symmetric channel (each bit flipped with probability p) C = 1 - H(p); for the binary erasure
channel (each bit lost, and known lost, with probability e) C = 1 - e, both in bits per use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ERASED = -1  # a BEC output bit that was lost (the receiver knows which ones)
KINDS = ("bsc", "bec")


def binary_entropy(p: float) -> float:
    """H(p) = -p log2 p - (1-p) log2 (1-p), in bits (0 at p = 0 and 1)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a probability must lie in [0, 1], got {p}")
    if p in (0.0, 1.0):
        return 0.0
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


@dataclass(frozen=True)
class Channel:
    """A memoryless binary channel: 'bsc' flips each bit, 'bec' erases it, with prob. `p`."""

    kind: str = "bsc"
    p: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown channel {self.kind!r}; choose bsc (binary symmetric) "
                             "or bec (binary erasure)")
        if not (isinstance(self.p, int | float) and 0.0 <= self.p <= 0.5):
            raise ValueError(f"the channel's error rate must lie in [0, 0.5], got {self.p!r} "
                             "(a BSC with p > 0.5 is a BSC with 1 - p and the bits inverted)")

    @property
    def capacity(self) -> float:
        """Bits of information per channel use: 1 - H(p) (BSC) or 1 - e (BEC)."""
        return 1.0 - binary_entropy(self.p) if self.kind == "bsc" else 1.0 - self.p

    @property
    def label(self) -> str:
        return f"BSC(p = {self.p:g})" if self.kind == "bsc" else f"BEC(e = {self.p:g})"

    def transmit(self, bits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The received bits (int8): flipped (BSC) or set to ERASED (BEC) independently."""
        bits = np.asarray(bits, dtype=np.int8)
        hit = rng.random(bits.shape) < self.p
        if self.kind == "bsc":
            return bits ^ hit.astype(np.int8)
        return np.where(hit, np.int8(ERASED), bits)


def text_to_bits(text: str) -> np.ndarray:
    """The UTF-8 bytes of `text` as a flat array of bits (int8, most significant first)."""
    return np.unpackbits(np.frombuffer(text.encode("utf-8"), dtype=np.uint8)).astype(np.int8)


def bits_to_text(bits: np.ndarray) -> str:
    """Inverse of `text_to_bits`; bytes broken by the channel show as U+FFFD."""
    b = np.asarray(bits, dtype=np.int64)
    b = np.where(b == ERASED, 0, b)[: len(b) // 8 * 8].astype(np.uint8)
    return np.packbits(b).tobytes().decode("utf-8", errors="replace")


def received_chars(bits: np.ndarray, reference: str) -> list[str]:
    """The received bits cut at the reference text's character boundaries and decoded piece
    by piece, so that the i-th entry is what became of the i-th character (a broken byte of a
    Chinese character stays in its own slot instead of shifting everything after it)."""
    b = np.asarray(bits, dtype=np.int64)
    data = np.packbits(np.where(b == ERASED, 0, b)[: len(b) // 8 * 8].astype(np.uint8)).tobytes()
    out, pos = [], 0
    for ch in reference:
        n = len(ch.encode("utf-8"))
        out.append(data[pos:pos + n].decode("utf-8", errors="replace"))
        pos += n
    return out


@dataclass(frozen=True)
class CapacityEstimate:
    """Mutual information I(X; Y) between uniform input bits and the channel's output,
    estimated from one simulation (plug-in), beside the formula."""

    channel: Channel
    bits: int
    observed_rate: float  # flips (BSC) or erasures (BEC) seen, per bit
    mutual_information: float  # plug-in I(X; Y) in bits per use
    stderr: float  # delta-method standard error of the estimate

    @property
    def capacity(self) -> float:
        return self.channel.capacity


def estimate_capacity(channel: Channel, bits: int = 100_000, seed: int = 0) -> CapacityEstimate:
    """Send `bits` uniform random bits (capacity-achieving input for both channels) and measure
    the plug-in mutual information of (input, output) pairs."""
    if bits < 1:
        raise ValueError(f"send at least one bit, got {bits}")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, bits, dtype=np.int8)
    y = channel.transmit(x, rng)
    joint = np.zeros((2, 3))
    np.add.at(joint, (x.astype(np.int64), np.where(y == ERASED, 2, y).astype(np.int64)), 1)
    joint /= bits
    px, py = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    mi = float((joint[nz] * np.log2(joint[nz] / (px @ py)[nz])).sum())
    if channel.kind == "bsc":
        rate = float((x != y).mean())
        # I = 1 - H(rate) (near-uniform input); dI/dq = log2(q / (1 - q))
        slope = math.log2(rate / (1 - rate)) if 0 < rate < 1 else 0.0
    else:
        rate = float((y == ERASED).mean())
        slope = 1.0  # I = 1 - e exactly for any input distribution's erasure share
    stderr = abs(slope) * math.sqrt(max(rate * (1 - rate), 1e-12) / bits)
    return CapacityEstimate(channel, bits, rate, mi, stderr)
