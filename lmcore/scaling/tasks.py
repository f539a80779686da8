"""Synthetic tasks with exact answers, generated in code, with a held-out set that never leaks.

Every problem is a `Problem(prompt, answer, length)` of short strings over `VOCAB`. Train and
test are disjoint by construction: a problem's *key* (its operands, its segment, its mapping)
is hashed (crc32), and keys whose hash falls in the held-out fifth are only ever drawn for
the test set; training draws reject them. The generators are seeded (`random.Random(seed)`).

- `addition`: k-digit addition `a+b=` (operands zero-padded to k digits), answer written least
  significant digit first (k+1 digits). Each answer digit depends on two operand digits and a
  carry: per-digit accuracy can rise smoothly while exact match (all k+1 right) is sharp.
- `long_addition`: n-digit addition in the natural order, answer only (`357+468=825.`) or with
  a scratchpad first (`357+468=512180>825.`: each step writes the digit and the carry, least
  significant first, then the answer), the operands right-aligned in columns of one width
  (`__357+__468=`). Lengths vary; the longest are rare in training.
- `repeated_segments`: random tokens, all distinct except one segment of random length that
  occurs twice at random places (the Olsson et al. 2022 induction-head setting); the second
  copy's tokens are predictable only by looking back for the previous occurrence of the
  current token and copying what followed it.
- `mapping`: few-shot prompts `a3,c7,b1,|c` -> `7` over a fresh random key->value mapping per
  prompt; the query's answer is in the prompt only when its key was shown.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

PAD = "_"  # id 0: padding, never a target
VOCAB = PAD + "0123456789+=>|.,?abcdefghijklmnopqrstuvwxyz"
STOI = {c: i for i, c in enumerate(VOCAB)}
HELD_OUT = 5  # one key in five (by crc32) is reserved for the test set
KEYS = "abcdefgh"  # few-shot keys
VALUES = "0123456789"  # few-shot values


@dataclass(frozen=True)
class Problem:
    """A prompt, its exact answer (what the model must produce) and the problem's size."""

    prompt: str
    answer: str
    length: int  # digits per operand / shots / segment length


def encode(text: str) -> list[int]:
    """Ids of `text` over VOCAB; a character outside it is a ValueError naming it."""
    try:
        return [STOI[c] for c in text]
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the task vocabulary") from None


def decode(ids: Sequence[int]) -> str:
    return "".join(VOCAB[int(i)] for i in ids)


def is_held_out(key: str) -> bool:
    """True when `key` belongs to the test set (crc32 of the key, one in HELD_OUT)."""
    return zlib.crc32(key.encode()) % HELD_OUT == 0


def _draw(rng: random.Random, make, split: str, n: int, max_tries: int = 200) -> list:
    """`n` items from `make(rng) -> (key, item)` whose key lies in `split`."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    want_test = split == "test"
    out = []
    tries = 0
    while len(out) < n:
        key, item = make(rng)
        tries += 1
        if is_held_out(key) == want_test:
            out.append(item)
            tries = 0
        elif tries > max_tries:
            raise ValueError("could not draw enough problems for this split: the problem "
                             "space is too small")
    return out


def _digits(rng: random.Random, n: int, pad: bool) -> int:
    lo = 0 if pad or n == 1 else 10 ** (n - 1)
    return rng.randrange(lo, 10 ** n)


# --- addition (emergence) -------------------------------------------------------------------

def addition_problem(a: int, b: int, k: int) -> Problem:
    """`a+b=` with k-digit zero-padded operands; answer = a+b, k+1 digits, reversed."""
    s = str(a + b).zfill(k + 1)
    return Problem(f"{a:0{k}d}+{b:0{k}d}=", s[::-1], k)


def addition(k: int, n: int, split: str = "train", seed: int = 0) -> list[Problem]:
    """`n` k-digit addition problems from `split` (operand pairs of train and test disjoint)."""
    if not 1 <= k <= 12:
        raise ValueError(f"digits must be between 1 and 12, got {k}")

    def make(rng):
        a, b = _digits(rng, k, True), _digits(rng, k, True)
        return f"{a}+{b}", addition_problem(a, b, k)

    return _draw(random.Random(f"add{k}-{split}-{seed}"), make, split, n)


# --- long addition with or without a scratchpad (chain of thought) --------------------------

def scratchpad(a: int, b: int, n: int) -> str:
    """Per digit, least significant first: the sum digit and the carry out ('512180')."""
    da, db = str(a).zfill(n)[::-1], str(b).zfill(n)[::-1]
    carry, out = 0, []
    for x, y in zip(da, db, strict=True):
        t = int(x) + int(y) + carry
        carry = t // 10
        out.append(f"{t % 10}{carry}")
    return "".join(out)


def long_addition_problem(a: int, b: int, n: int, with_scratchpad: bool,
                          width: int | None = None) -> Problem:
    """`a+b=` with each operand right-aligned in a column of `width` characters (PAD on the
    left, `__357+__468=` at width 5; default: no padding), as one writes a sum on paper."""
    answer = str(a + b)
    w = n if width is None else width
    prompt = f"{str(a).rjust(w, PAD)}+{str(b).rjust(w, PAD)}="
    if with_scratchpad:
        return Problem(prompt, f"{scratchpad(a, b, n)}>{answer}.", n)
    return Problem(prompt, f"{answer}.", n)


def operands(prompt: str) -> tuple[int, int]:
    """The two operands of a long-addition prompt (`__357+__468=` -> (357, 468))."""
    a, b = prompt.rstrip("=").split("+")
    return int(a.lstrip(PAD)), int(b.lstrip(PAD))


def final_answer(text: str) -> str:
    """The answer inside a generated completion: after the last '>' and before '.'."""
    text = text.split(".", 1)[0]
    return text.rsplit(">", 1)[-1]


def long_addition(lengths: Sequence[int], weights: Sequence[float] | None, n: int,
                  with_scratchpad: bool, split: str = "train", seed: int = 0,
                  width: int | None = None) -> list[Problem]:
    """`n` problems, each with both operands of n digits, n drawn from `lengths` by `weights`,
    right-aligned in columns of `width` (default: the longest length).

    Aligned columns put the i-th digit from the right of every operand, and so each step of
    the work, at the same position whatever the length, so what a model learns on short
    problems applies to long ones; unaligned, a 2-layer model that solved 3 digits with the
    scratchpad stayed at 0.00-0.12 on 4 digits (see `lmcore.scaling.chain_of_thought`).
    The same seed gives the same operands with and without the scratchpad.
    """
    if not lengths or min(lengths) < 1 or max(lengths) > 12:
        raise ValueError("problem lengths must lie between 1 and 12 digits")
    width = max(lengths) if width is None else int(width)
    if not max(lengths) <= width <= 12:
        raise ValueError(f"the column width must lie between the longest length "
                         f"({max(lengths)}) and 12, got {width}")

    def make(rng):
        d = rng.choices(list(lengths), weights=weights)[0]
        a, b = _digits(rng, d, False), _digits(rng, d, False)
        return f"{a}+{b}", long_addition_problem(a, b, d, with_scratchpad, width)

    return _draw(random.Random(f"long-{split}-{seed}"), make, split, n)


# --- repeated segments (induction heads) ----------------------------------------------------

@dataclass(frozen=True)
class Repeats:
    """(N, T) token ids in which one segment of L tokens occurs twice; every other token once.

    The first copy starts at `first_at` (a), the second at `again_at` (b >= a + L), so
    ids[b + i] == ids[a + i] for i < L. Neither where the copies sit nor how far apart they
    are is fixed, so no head that looks a fixed distance back can predict the second copy.
    """

    ids: torch.Tensor  # (N, T) in 0..vocab-1
    seg_len: torch.Tensor  # (N,) L
    first_at: torch.Tensor  # (N,) a
    again_at: torch.Tensor  # (N,) b

    def _targets(self) -> torch.Tensor:
        return torch.arange(1, self.ids.shape[1])[None, :]  # (1, T-1): target positions

    def repeat_mask(self) -> torch.Tensor:
        """(N, T-1) True at targets b+1..b+L-1: the second copy after its first token.

        Target t is predicted from ids[:t]. ids[b] is not predictable (nothing says a copy
        starts); ids[t] for b < t < b + L is: the token before it occurred once, at
        t - 1 - (b - a), followed by it.
        """
        t, b = self._targets(), self.again_at[:, None]
        return (t > b) & (t < b + self.seg_len[:, None])

    def fresh_mask(self) -> torch.Tensor:
        """(N, T-1) True at targets outside both copies' repeat: tokens never seen before
        (the second copy's first token excluded too): unpredictable, chance ln(vocab)."""
        t, b = self._targets(), self.again_at[:, None]
        return (t < b) | (t >= b + self.seg_len[:, None])


def repeated_segments(n: int, T: int, vocab: int, min_len: int, max_len: int,
                      split: str = "train", seed: int = 0) -> Repeats:
    """`n` sequences of T distinct random tokens except a segment of L in [min_len, max_len]
    tokens that occurs twice, at random non-overlapping places. Train and test sequences are
    disjoint (hash of the whole sequence)."""
    if not 2 <= min_len <= max_len or 2 * max_len > T:
        raise ValueError(f"segment lengths {min_len}..{max_len} must be at least 2 and fit "
                         f"twice in {T} tokens")
    if vocab < T - min_len:
        raise ValueError(f"{T} tokens with one segment of {min_len} repeated need a vocabulary "
                         f"of at least {T - min_len} (every other token distinct), got {vocab}")

    def make(rng):
        L = rng.randint(min_len, max_len)
        toks = rng.sample(range(vocab), T - L)
        a = rng.randint(0, T - 2 * L)
        b = rng.randint(a + L, T - L)
        seq = toks[:b] + toks[a:a + L] + toks[b:]
        return ",".join(map(str, seq)), (seq, L, a, b)

    items = _draw(random.Random(f"rep-{split}-{seed}"), make, split, n)
    cols = list(zip(*items, strict=True))
    return Repeats(torch.tensor(cols[0], dtype=torch.long),
                   *(torch.tensor(c, dtype=torch.long) for c in cols[1:]))


# --- few-shot mapping (in-context learning) -------------------------------------------------

def mapping_problem(mapping: dict[str, str], shown: Sequence[str], query: str) -> Problem:
    """`a3,c7,|c` -> answer mapping[query]; `shown` are the keys given as examples.

    The answer comes right after the query key, as each value comes right after its key in
    the examples: the look-up a repeated example teaches (at a key, predict what followed its
    last occurrence) is then the one the query needs. With an `=` after the query the answer
    is predicted one token later, where no example trains it (see `lmcore.scaling.fewshot`).
    """
    shots = "".join(f"{k}{mapping[k]}," for k in shown)
    return Problem(f"{shots}|{query}", mapping[query], len(shown))


def mapping(n: int, shots: Sequence[int], split: str = "train", seed: int = 0,
            repeats: bool = False) -> list[Problem]:
    """`n` prompts, each over a fresh random mapping KEYS -> VALUES with k examples (k drawn
    from `shots`) and a query key drawn from all keys. The example keys are distinct, or with
    `repeats` drawn with replacement ('bursty' prompts, in which a key can come back: what
    training uses, so that every repeated example teaches the look-up). Mappings of train
    and test are disjoint (hash of the whole mapping)."""
    most = 4 * len(KEYS) if repeats else len(KEYS)
    if not shots or min(shots) < 0 or max(shots) > most:
        raise ValueError(f"shots must lie between 0 and {most}")

    def make(rng):
        m = {k: rng.choice(VALUES) for k in KEYS}
        k = rng.choice(list(shots))
        shown = rng.choices(KEYS, k=k) if repeats else rng.sample(KEYS, k)
        query = rng.choice(KEYS)
        return "".join(m.values()), mapping_problem(m, shown, query)

    return _draw(random.Random(f"map-{split}-{seed}"), make, split, n)


def ideal_mapping_accuracy(k: int) -> float:
    """Accuracy of a perfect in-context learner with k shots: the key was shown (k/K) or a
    guess among the values."""
    p = k / len(KEYS)
    return p + (1 - p) / len(VALUES)


def pack_values(problems: Sequence[Problem], T: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Like `pack`, but the loss is on every value of the prompt (the digit after each key)
    as well as the answer: a value whose key came earlier is predictable in context."""
    x, y = pack(problems, T)
    for i, p in enumerate(problems):
        text = p.prompt + p.answer
        for j in range(1, len(p.prompt)):
            if text[j] in VALUES and text[j - 1] in KEYS:
                y[i, j - 1] = STOI[text[j]]
    return x, y


# --- batches --------------------------------------------------------------------------------

def pack(problems: Sequence[Problem], T: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T) input ids and (N, T) targets: next token of prompt+answer, -100 outside the answer.

    Inputs are prompt + answer without its last character, right-padded with PAD; the loss
    is on predicting the answer's characters only.
    """
    seqs = [encode(p.prompt + p.answer) for p in problems]
    width = max(len(s) for s in seqs) - 1
    T = width if T is None else T
    if width > T:
        raise ValueError(f"a problem needs {width + 1} tokens but the context is {T}")
    x = torch.zeros(len(seqs), T, dtype=torch.long)
    y = torch.full((len(seqs), T), -100, dtype=torch.long)
    for i, (p, s) in enumerate(zip(problems, seqs, strict=True)):
        s = torch.tensor(s)
        x[i, :len(s) - 1] = s[:-1]
        start = len(p.prompt) - 1  # input position whose next token is the answer's first
        y[i, start:len(s) - 1] = s[len(p.prompt):]
    return x, y
