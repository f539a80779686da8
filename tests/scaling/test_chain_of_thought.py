"""The chain-of-thought reading: said from the rows (exact match by length), true to them."""

from __future__ import annotations

from lmcore.scaling.chain_of_thought import read_lengths

SHARES = {1: 0.2752, 2: 0.2616, 3: 0.2666, 4: 0.13, 5: 0.0667, 6: 0.0}


def _rows(answer: list[float], pad: list[float]) -> list[dict]:
    return [{"variant": v, "digits": n, "exact_match": x, "share_of_training": SHARES[n]}
            for v, xs in (("answer only", answer), ("scratchpad", pad))
            for n, x in enumerate(xs, start=1)]


def test_the_default_runs_reading():
    # the page's default run in Chromium (seed 0, 1,500 steps, 2x64)
    rows = _rows([1.0, 0.42, 0.08, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    assert read_lengths(rows) == (
        "The scratchpad is ahead at 2 and 3 digits (1.00 against 0.42, 1.00 against 0.08). "
        "Neither solves 4 to 6 digits, which made up 13%, 7%, 0% of the training problems.")


def test_behind_ties_and_no_unsolved_lengths():
    rows = _rows([1.0, 0.9, 0.6, 0.3, 0.2, 0.1], [1.0, 0.95, 0.3, 0.35, 0.2, 0.1])
    assert read_lengths(rows) == "Answer only is ahead at 3 digits."
    rows = _rows([1.0] * 6, [1.0] * 6)
    assert read_lengths(rows) == "The two variants score alike at every length here."
