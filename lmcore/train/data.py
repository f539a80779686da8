"""Token ids of a corpus, cut into (B, T) training windows with a seeded generator.

Training batches are random windows (nanoGPT's `get_batch`): `B` start offsets drawn from a
`torch.Generator`, so the same seed gives the same batches. Evaluation uses fixed, disjoint
windows over the held-out split that overlap by one token, so each held-out token is predicted
exactly once by a causal model and the numbers never depend on a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SPLITS = ("train", "valid")


@dataclass
class TokenData:
    """Train and validation token ids (int64) with the characters each split covers."""

    train: torch.Tensor  # (N_train,)
    valid: torch.Tensor  # (N_valid,)
    train_chars: int
    valid_chars: int
    fingerprint: str = ""  # the corpus fingerprint, for the run store

    @classmethod
    def from_ids(cls, train_ids: list[int], valid_ids: list[int], train_chars: int,
                 valid_chars: int, fingerprint: str = "") -> TokenData:
        return cls(torch.tensor(train_ids, dtype=torch.long),
                   torch.tensor(valid_ids, dtype=torch.long), train_chars, valid_chars,
                   fingerprint)

    @classmethod
    def from_text(cls, tokenizer, train_text: str, valid_text: str,
                  fingerprint: str = "") -> TokenData:
        """Encode both splits with `tokenizer` (anything with `encode(text) -> list[int]`)."""
        return cls.from_ids(tokenizer.encode(train_text), tokenizer.encode(valid_text),
                            len(train_text), len(valid_text), fingerprint)

    @classmethod
    def from_corpus(cls, corpus, tokenizer) -> TokenData:
        """Train on the corpus's train split, evaluate on its validation split."""
        split = corpus.split()
        return cls.from_text(tokenizer, split.train, split.valid, corpus.fingerprint)

    def ids(self, split: str) -> torch.Tensor:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.train if split == "train" else self.valid

    def tokens_per_char(self, split: str = "valid") -> float:
        """Tokens per character of a split: turns bits per token into bits per character."""
        chars = self.train_chars if split == "train" else self.valid_chars
        return len(self.ids(split)) / chars if chars else float("nan")

    def check(self, window: int) -> None:
        """Raise a ValueError a person can act on when a split is too short for `window`."""
        for split in SPLITS:
            n = len(self.ids(split))
            if n < window:
                raise ValueError(
                    f"the {split} split has only {n:,} tokens but training needs windows of "
                    f"{window:,} tokens (context + 1): use a longer text or a smaller context")

    def batch(self, split: str, batch_size: int, window: int, gen: torch.Generator,
              shard: tuple[int, int] = (0, 1)) -> torch.Tensor:
        """(B, window) random windows of `split`, starts drawn from `gen`.

        `shard=(rank, ranks)`: every rank draws the same B starts (so the generator stays in
        step) and reads only rows rank, rank + ranks, ...: (B / ranks, window).
        """
        ids = self.ids(split)
        n = len(ids)
        if n < window:
            self.check(window)
        starts = torch.randint(0, n - window + 1, (batch_size,), generator=gen)  # (B,)
        rank, ranks = shard
        starts = starts[rank::ranks]  # (B / ranks,)
        offsets = torch.arange(window)  # (T,)
        return ids[starts[:, None] + offsets[None, :]]  # (B, T)

    def eval_windows(self, window: int, max_tokens: int | None = None,
                     split: str = "valid") -> torch.Tensor:
        """(N, window) disjoint windows over `split` sharing one token at each seam.

        Every token after the first of the split is a prediction target exactly once; at most
        `max_tokens` targets are covered (the beginning of the split).
        """
        ids = self.ids(split)
        step = window - 1
        if step < 1:
            raise ValueError(f"window must be at least 2, got {window}")
        usable = len(ids) - 1
        if max_tokens is not None:
            usable = min(usable, max_tokens)
        n = max(usable // step, 0)
        if n == 0:
            self.check(window)
        starts = torch.arange(n) * step  # (N,)
        return ids[starts[:, None] + torch.arange(window)[None, :]]  # (N, T)
