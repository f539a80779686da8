"""Binary linear block codes sent bit by bit through a noisy channel, and decoded.

Every code here is linear over GF(2): a k x n generator G (codeword = message @ G mod 2) and an
(n-k) x n parity-check matrix H (H @ codeword = 0). Repetition codes, Hamming (7, 4) and seeded
random systematic codes G = [I_k | P], H = [P^T | I_{n-k}] share one decoder:

- BSC: maximum likelihood = the codeword nearest in Hamming distance. With few codewords
  (2^k <= 4096) it compares against all of them (a +-1 correlation, one matmul per batch);
  otherwise it uses syndrome decoding: H @ received picks one of 2^(n-k) cosets, and the
  coset's lightest member (its leader, found by enumerating error patterns by weight) is the
  most likely error. Both are exact ML; ties go to the first codeword / leader found.
- BEC: the known bits fix the erased ones through H: solve H_E x_E = H_K y_K over GF(2)
  (Gaussian elimination). A unique solution is the codeword (ML); when the erased columns are
  dependent, the free bits are guessed (0), which is where residual errors come from.

Random linear codes approach capacity as n grows (Shannon's random-coding argument); at the
small n this module can decode exactly, the approach is visible but partial.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lmcore.info.channel import ERASED, Channel

MAX_CODEWORDS = 1 << 12  # ML by comparing with every codeword up to here
MAX_COSETS = 1 << 12  # syndrome table size limit (2^(n-k) cosets)
MAX_N = 32


@dataclass
class LinearCode:
    """An [n, k] binary linear code given by its generator and parity-check matrices."""

    name: str
    G: np.ndarray  # (k, n) generator, systematic: the message is the first k bits
    H: np.ndarray  # (n - k, n) parity checks, G @ H.T = 0 (mod 2)
    _leaders: dict | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.G = np.asarray(self.G, dtype=np.int8) % 2
        self.H = np.asarray(self.H, dtype=np.int8).reshape(-1, self.G.shape[1]) % 2
        if ((self.G.astype(np.int64) @ self.H.T.astype(np.int64)) % 2).any():
            raise ValueError(f"{self.name}: G and H are not orthogonal (G H^T != 0 mod 2)")

    @property
    def n(self) -> int:
        return int(self.G.shape[1])

    @property
    def k(self) -> int:
        return int(self.G.shape[0])

    @property
    def rate(self) -> float:
        return self.k / self.n

    def encode(self, messages: np.ndarray) -> np.ndarray:
        """(m, k) message bits -> (m, n) codewords."""
        return ((np.asarray(messages, dtype=np.int64) @ self.G) % 2).astype(np.int8)

    def syndrome(self, received: np.ndarray) -> np.ndarray:
        """(m, n) hard bits -> (m, n-k) syndromes H y (zero for a codeword)."""
        return ((np.asarray(received, dtype=np.int64) @ self.H.T) % 2).astype(np.int8)

    def codewords(self) -> np.ndarray:
        """All 2^k codewords (row i encodes the binary expansion of i, MSB first)."""
        msgs = (np.arange(1 << self.k)[:, None] >> np.arange(self.k - 1, -1, -1)) & 1
        return self.encode(msgs)

    def coset_leaders(self) -> dict[int, np.ndarray]:
        """Syndrome (as an int) -> lightest error pattern with it, by increasing weight.

        A pattern's syndrome is the XOR of its columns of H, so each is one XOR per bit."""
        if self._leaders is None:
            r = self.n - self.k
            if (1 << r) > MAX_COSETS:
                raise ValueError(f"{self.name}: 2^{r} cosets is too many for a syndrome table")
            weights = 1 << np.arange(r - 1, -1, -1)
            cols = [int(c) for c in self.H.T.astype(np.int64) @ weights]  # column syndromes
            found: dict[int, tuple[int, ...]] = {0: ()}
            for w in range(1, self.n + 1):
                if len(found) == 1 << r:
                    break
                for pos in itertools.combinations(range(self.n), w):
                    syn = 0
                    for p in pos:
                        syn ^= cols[p]
                    if syn not in found:
                        found[syn] = pos
                        if len(found) == 1 << r:
                            break
            leaders = {}
            for syn, pos in found.items():
                e = np.zeros(self.n, dtype=np.int8)
                e[list(pos)] = 1
                leaders[syn] = e
            self._leaders = leaders
        return self._leaders

    # -- decoding

    def decode(self, received: np.ndarray) -> np.ndarray:
        """(m, n) channel output (0/1, or ERASED) -> (m, k) ML message estimates."""
        y = np.asarray(received, dtype=np.int8)
        if (y == ERASED).any():
            return self._decode_erasures(y)
        if (1 << self.k) <= MAX_CODEWORDS:
            return self._decode_nearest(y)
        return self._decode_syndrome(y)

    def _decode_nearest(self, y: np.ndarray, batch: int = 2048) -> np.ndarray:
        cw = self.codewords()
        signs = (1 - 2 * cw.astype(np.float32)).T  # (n, 2^k)
        out = np.empty((len(y), self.k), dtype=np.int8)
        for s in range(0, len(y), batch):
            yb = y[s:s + batch]
            ry = np.where(yb == ERASED, 0.0, 1.0 - 2.0 * yb).astype(np.float32)  # +-1, 0
            best = np.argmax(ry @ signs, axis=1)  # max correlation = min Hamming distance
            out[s:s + batch] = cw[best, : self.k]
        return out

    def _decode_syndrome(self, y: np.ndarray) -> np.ndarray:
        leaders = self.coset_leaders()
        r = self.n - self.k
        s = self.syndrome(y).astype(np.int64) @ (1 << np.arange(r - 1, -1, -1))
        table = np.zeros((1 << r, self.n), dtype=np.int8)
        for key, e in leaders.items():
            table[key] = e
        return (y ^ table[s])[:, : self.k]

    def _decode_erasures(self, y: np.ndarray) -> np.ndarray:
        if (1 << self.k) <= MAX_CODEWORDS:  # erased bits count 0 in the correlation: the
            return self._decode_nearest(y)  # first codeword agreeing with every known bit
        return solve_erasures(self.H, y)[:, : self.k]


def solve_erasures(H: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fill each row's ERASED bits so that H x = 0 (mod 2): batched Gauss-Jordan over GF(2).

    Per block the unknowns are the erased columns, the right side the parity of the known
    bits; free unknowns (dependent erased columns) are set to 0.
    """
    y = np.asarray(y, dtype=np.int8)
    m, n = y.shape
    r = H.shape[0]
    erased = y == ERASED  # (m, n)
    known = np.where(erased, 0, y).astype(np.int64)
    A = (H[None, :, :].astype(bool) & erased[:, None, :])  # (m, r, n): erased columns only
    b = ((known @ H.T.astype(np.int64)) % 2).astype(bool)  # (m, r)
    used = np.zeros((m, r), dtype=bool)
    pivot = np.full((m, n), -1)
    rows = np.arange(m)
    for col in range(n):
        cand = A[:, :, col] & ~used  # (m, r)
        has = cand.any(axis=1)
        p = np.argmax(cand, axis=1)  # first candidate row
        blocks = rows[has]
        if blocks.size == 0:
            continue
        prow = p[has]
        pivot[blocks, col] = prow
        used[blocks, prow] = True
        hit = A[blocks, :, col].copy()  # rows to clear, (b, r)
        hit[np.arange(blocks.size), prow] = False
        A[blocks] ^= hit[:, :, None] & A[blocks, prow][:, None, :]
        b[blocks] ^= hit & b[blocks, prow][:, None]
    x = known.astype(np.int8)
    bi, ci = np.nonzero(erased & (pivot >= 0))
    x[bi, ci] = b[bi, pivot[bi, ci]]
    return x


# ----------------------------------------------------------------------------- code families


def repetition_code(n: int) -> LinearCode:
    """Each bit sent n times; majority vote on the BSC (n odd breaks ties cleanly)."""
    if not 1 <= n <= MAX_N:
        raise ValueError(f"a repetition code repeats 1..{MAX_N} times, got {n}")
    G = np.ones((1, n), dtype=np.int8)
    H = np.concatenate([np.ones((n - 1, 1), dtype=np.int8), np.eye(n - 1, dtype=np.int8)], 1)
    return LinearCode(f"repetition ({n}, 1)" if n > 1 else "uncoded", G, H)


def hamming74() -> LinearCode:
    """Hamming's (7, 4) code: distance 3, so every single flipped bit is corrected."""
    P = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=np.int8)
    G = np.concatenate([np.eye(4, dtype=np.int8), P], 1)
    H = np.concatenate([P.T, np.eye(3, dtype=np.int8)], 1)
    return LinearCode("Hamming (7, 4)", G, H)


def random_linear_code(n: int, k: int, seed: int = 0) -> LinearCode:
    """A seeded random systematic [n, k] code G = [I | P] (P uniform random bits)."""
    if not (1 <= k <= n <= MAX_N):
        raise ValueError(f"a random linear code needs 1 <= k <= n <= {MAX_N}, got n={n}, k={k}")
    if (1 << k) > MAX_CODEWORDS and (1 << (n - k)) > MAX_COSETS:
        raise ValueError(f"[{n}, {k}] is too large to decode exactly: keep k <= "
                         f"{MAX_CODEWORDS.bit_length() - 1} or n - k <= "
                         f"{MAX_COSETS.bit_length() - 1}")
    P = np.random.default_rng([seed, n, k]).integers(0, 2, (k, n - k), dtype=np.int8)
    G = np.concatenate([np.eye(k, dtype=np.int8), P], 1)
    H = np.concatenate([P.T, np.eye(n - k, dtype=np.int8)], 1)
    return LinearCode(f"random linear [{n}, {k}]", G, H)


def code_from_name(name: str, seed: int = 0) -> LinearCode:
    """'rep3', 'hamming74', 'rand16x8' (random linear n=16, k=8), 'uncoded'."""
    s = name.strip().lower()
    try:
        if s == "uncoded":
            return repetition_code(1)
        if s == "hamming74":
            return hamming74()
        if s.startswith("rep"):
            return repetition_code(int(s[3:]))
        if s.startswith("rand"):
            n, k = s[4:].split("x")
            return random_linear_code(int(n), int(k), seed)
    except ValueError as exc:
        if "invalid literal" not in str(exc) and "unpack" not in str(exc):
            raise
    raise ValueError(f"unknown code {name!r}: use uncoded, repN (e.g. rep3), hamming74 or "
                     "randNxK (random linear, e.g. rand16x8)")


def default_family(max_n: int = 24) -> list[LinearCode]:
    """The sweep of the rate plot: repetition 1..9, Hamming (7, 4), and random linear codes at
    n = 8, 16, 24 over rates 1/4 .. 7/8 (a longer block at the same rate shows the trend)."""
    codes = [repetition_code(n) for n in (1, 3, 5, 7, 9)] + [hamming74()]
    for n in (8, 16, 24):
        if n > max_n:
            continue
        for k in sorted({max(1, round(n * r)) for r in (0.25, 0.375, 0.5, 0.625, 0.75, 0.875)}):
            codes.append(random_linear_code(n, k))
    return codes


# ----------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class CodeRun:
    """One code through one channel: measured residual errors on the message bits."""

    code: str
    n: int
    k: int
    rate: float
    channel: str
    capacity: float
    message_bits: int
    bit_errors: int
    block_errors: int
    blocks: int
    decoded: np.ndarray = field(repr=False, compare=False)  # (message_bits,) decoded bits

    @property
    def ber(self) -> float:
        return self.bit_errors / self.message_bits if self.message_bits else 0.0

    @property
    def ber_upper(self) -> float:
        """95% upper bound on the BER (rule of three when no error was seen, else Wilson)."""
        n, x = self.message_bits, self.bit_errors
        if n == 0:
            return 1.0
        if x == 0:
            return min(1.0, 3.0 / n)
        z, p = 1.96, x / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return min(1.0, centre + half)

    @property
    def below_capacity(self) -> bool:
        return self.rate < self.capacity

    def as_row(self) -> dict:
        return {"code": self.code, "n": self.n, "k": self.k, "rate": self.rate,
                "rate < C": self.below_capacity, "message bits": self.message_bits,
                "bit errors": self.bit_errors, "BER": self.ber, "BER 95% upper": self.ber_upper,
                "block errors": self.block_errors, "blocks": self.blocks}


def simulate(code: LinearCode, channel: Channel, bits: np.ndarray, seed: int = 0) -> CodeRun:
    """Send `bits` (padded with zeros to whole blocks) through `channel` with `code`, decode,
    and count residual errors on the real message bits."""
    bits = np.asarray(bits, dtype=np.int8).reshape(-1)
    if bits.size == 0:
        raise ValueError("there are no bits to send: the text is empty")
    m = -(-bits.size // code.k)
    msg = np.zeros(m * code.k, dtype=np.int8)
    msg[: bits.size] = bits
    msg = msg.reshape(m, code.k)
    rng = np.random.default_rng([seed, code.n, code.k])
    received = channel.transmit(code.encode(msg), rng)
    est = code.decode(received)
    wrong = (est != msg).reshape(-1)[: bits.size]
    blocks_wrong = int((est != msg).any(axis=1).sum())
    return CodeRun(code.name, code.n, code.k, code.rate, channel.label, channel.capacity,
                   int(bits.size), int(wrong.sum()), blocks_wrong, m,
                   decoded=est.reshape(-1)[: bits.size].copy())


def rate_sweep(bits: np.ndarray, channel: Channel, codes: Sequence[LinearCode] | None = None,
               seed: int = 0, progress: Callable[[float, str], None] | None = None,
               stop: threading.Event | None = None) -> list[CodeRun]:
    """Residual BER of every code on the same bits and channel (the rate-vs-error plot)."""
    codes = default_family() if codes is None else list(codes)
    out = []
    for i, code in enumerate(codes):
        if stop is not None and stop.is_set():
            break
        if progress is not None:
            progress(i / len(codes), code.name)
        out.append(simulate(code, channel, bits, seed))
    if progress is not None:
        progress(1.0, "done")
    return out
