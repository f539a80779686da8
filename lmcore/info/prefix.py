"""Has a stateful model already read the start of this context? (adaptive, mixing, stepper)"""

from __future__ import annotations

from collections.abc import Sequence


def extends(context: Sequence[int], seen: list[int], last: object) -> bool:
    """Does `context` start with `seen`, the tokens a stateful model has read? O(1) for the
    coder's pattern, the very list passed last time (`last`) grown by appends; otherwise a
    full comparison. Mutating such a list in place is not supported."""
    n = len(seen)
    if context is last and len(context) >= n and (n == 0 or context[n - 1] == seen[-1]):
        return True
    return len(context) >= n and list(context[:n]) == seen
