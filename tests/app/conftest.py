"""AppTests import `apptest` from this folder; every AppTest starts and ends without jobs."""

import sys
from pathlib import Path

import pytest
import streamlit as st

sys.path.insert(0, str(Path(__file__).parent))

from apptest import join_jobs  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _forkserver_started():
    """Jobs run in processes forked from a forkserver that imports torch once (a minute on a
    loaded machine): start it before the first test, not inside one test's time budget."""
    from lmcore.app.jobs import warm_up

    warm_up(wait=True)


@pytest.fixture(autouse=True)
def _no_jobs_from_other_tests():
    """Every AppTest runs as one session id, so they share one job registry: the page would
    show the job another test left (`reg.latest`). Start and end each test without jobs."""
    join_jobs()
    st.cache_resource.clear()
    yield
    join_jobs()
    st.cache_resource.clear()
