"""The across-sizes reading of an emergence run: said from the rows, true to them."""

from __future__ import annotations

from lmcore.scaling.emergence import read_sizes


def _row(model: str, n: int, acc: float, exact: float) -> dict:
    return {"model": model, "non_embedding": n, "token_accuracy": acc, "exact_match": exact}


def test_a_zigzag_across_sizes_is_named_not_read_as_bigger_is_worse():
    # the seed-0 default run at step 1,000 (lmcore emergence addition): 2x32 below 1x32
    rows = [_row("2x32", 25_000, 0.724, 0.070), _row("1x16", 3_000, 0.551, 0.008),
            _row("1x32", 12_500, 0.997, 0.988), _row("2x48", 56_000, 0.999, 0.994)]
    text = read_sizes(rows, 1000)
    assert text.startswith("At step 1,000, per-digit accuracy spans 0.55 to 1.00 across these "
                           "sizes and exact match 0.01 to 0.99")
    assert "Size does not order them here (2x32 scores below 1x32)" in text
    assert "seed" in text and "rises with size" not in text


def test_exact_match_that_grows_with_size_is_said_so():
    rows = [_row("1x16", 3_000, 0.60, 0.02), _row("1x32", 12_500, 0.80, 0.31),
            _row("2x32", 25_000, 0.99, 0.97), _row("2x48", 56_000, 0.995, 0.96)]  # a tie
    text = read_sizes(rows, 500)
    assert text.endswith("Here exact match also rises with size.")
    assert "does not order" not in text


def test_one_model_has_nothing_to_compare():
    assert read_sizes([_row("1x16", 3_000, 0.5, 0.0)], 100) == ""
