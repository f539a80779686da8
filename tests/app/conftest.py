"""AppTests import `apptest` from this folder; every AppTest starts and ends without jobs."""

import sys
from pathlib import Path

import pytest
import streamlit as st

sys.path.insert(0, str(Path(__file__).parent))

from apptest import join_jobs  # noqa: E402


@pytest.fixture(autouse=True)
def _no_jobs_from_other_tests():
    """Every AppTest runs as one session id, so they share one job registry: the page would
    show the job another test left (`reg.latest`). Start and end each test without jobs."""
    join_jobs()
    st.cache_resource.clear()
    yield
    join_jobs()
    st.cache_resource.clear()
