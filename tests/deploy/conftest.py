"""Chromium for the hosted-server tests (the server itself: `servekit.serve`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def browser(chromium):
    """The session's one Chromium (tests/conftest.py: `chromium`)."""
    return chromium
