"""The page's time estimate: evaluations counted as the trainer runs them; calibration on the
job's thread count leaves the caller's count as it was."""

from __future__ import annotations

import pytest
import torch

from lmcore.train.estimate import calibrate, run_seconds


def test_run_seconds_counts_the_trainers_evaluations():
    # 200 steps, eval every 50: at 50, 100, 150 and at the end (200) = 4 evaluations; each
    # scores 4096 held-out and 4096 training tokens in windows of 64, 16 per batch: 2 x 4
    # forward batches of a third of a step
    assert run_seconds(0.01, 200, 16, 64, 50, 4096) == pytest.approx(
        200 * 0.01 + 4 * 8 * 0.01 / 3)
    assert run_seconds(0.01, 200, 16, 64, 0, 4096) == pytest.approx(
        200 * 0.01 + 1 * 8 * 0.01 / 3)  # 0: only at the end
    assert run_seconds(0.01, 1, 16, 64, 50, 4096) == pytest.approx(0.01 + 8 * 0.01 / 3)


def test_calibrate_on_other_threads_restores_the_count():
    before = torch.get_num_threads()
    rate = calibrate(steps=1, batch=2, context=8, threads=1)
    assert rate > 0 and torch.get_num_threads() == before
