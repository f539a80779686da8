"""Shared AppTest plumbing: open a page file, run it, and fail on any exception element."""

from __future__ import annotations

import threading
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def open_page(relpath: str, timeout: float = 60) -> AppTest:
    """Run one page script the way a direct URL on a fresh server would (no entrypoint)."""
    at = AppTest.from_file(str(ROOT / relpath), default_timeout=timeout)
    at.run()
    assert_no_exception(at)
    return at


def assert_no_exception(at: AppTest) -> None:
    """No traceback element on the page (errors must be st.error boxes)."""
    assert not at.exception, [e.value for e in at.exception]


def error_texts(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def open_app(timeout: float = 60) -> AppTest:
    """Run the home page (the entrypoint): other pages are then reached with `goto`."""
    return open_page("streamlit_app.py", timeout=timeout)


def goto(at: AppTest, relpath: str) -> AppTest:
    """Switch to another page the way a sidebar link does (same session), run it, check it."""
    at.switch_page(relpath).run()
    assert_no_exception(at)
    return at


def current_corpus(at: AppTest):
    """The corpus this AppTest session is using (its `Lab` in session state)."""
    return at.session_state["lmcore.lab"].corpus


def sidebar_text(at: AppTest) -> str:
    """Everything the shared sidebar writes as markdown, joined."""
    return "\n".join(m.value for m in at.sidebar.markdown)


def join_jobs(timeout: float = 90) -> None:
    """Wait for every background job thread (AppTest cannot run the polling timer)."""
    for t in threading.enumerate():
        if t.name.startswith("lmcore-job-"):
            t.join(timeout)
            assert not t.is_alive(), f"{t.name} still running after {timeout} s"


def numbers(df):
    """A shown table with its numbers back: text columns that `readable` made ('–' where a
    cell is missing, '1,234' for whole numbers) become numeric where every cell parses."""
    import pandas as pd

    out = df.copy()
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]):
            text = out[c].astype(str).str.replace(",", "", regex=False)
            parsed = pd.to_numeric(text.where(text != "–"), errors="coerce")
            if parsed.notna().sum() == (text != "–").sum():  # every non-dash cell a number
                out[c] = parsed
    return out
