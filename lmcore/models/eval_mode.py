"""Evaluate a module without changing its mode for good: eval() for a block, then put back.

Dropout is off and norms use their running statistics inside the block; whatever the module
was before (training or not) it is again afterwards, also when the block raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """`with eval_mode(model):` runs the block with `model.eval()` and restores `model.training`."""
    was = model.training
    if not was:  # already evaluating: nothing to switch (a walk over every submodule)
        yield model
        return
    model.eval()
    try:
        yield model
    finally:
        model.train(was)
