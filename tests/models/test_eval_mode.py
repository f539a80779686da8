"""eval_mode: eval inside the block, the module's own mode back afterwards, also on errors."""

from __future__ import annotations

import pytest
import torch

from lmcore.models.eval_mode import eval_mode


@pytest.mark.parametrize("training", [True, False])
def test_eval_inside_and_the_mode_put_back_even_after_an_error(training):
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    net.train(training)
    with eval_mode(net) as m:
        assert m is net and not net.training and not net[1].training
    assert net.training is training and net[1].training is training
    with pytest.raises(RuntimeError, match="boom"), eval_mode(net):
        raise RuntimeError("boom")
    assert net.training is training and net[1].training is training
