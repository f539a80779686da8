"""The frame every page starts with: page config, the shared sidebar, and error containment.

Each page calls `page(...)` first. That makes a page opened directly by URL on a fresh server
work (it needs nothing from the entrypoint), and gives every page the same sidebar.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st
from streamlit.errors import StreamlitAPIException

from lmcore.app.session_life import expired, touch
from lmcore.app.state import Lab, get_lab
from lmcore.data.corpus import CorpusError
from lmcore.settings import LimitError, Settings, get_settings

log = logging.getLogger("lmcore.app")
F = TypeVar("F", bound=Callable[..., Any])

_EXPECTED = (CorpusError, LimitError, ValueError, FileNotFoundError)
_ROOT = Path(__file__).resolve().parents[2]  # the folder holding streamlit_app.py and pages/
_ICONS = {"Corpus": "📚", "N-gram": "🔢", "Transformer": "🤖", "Objectives": "🎭",
          "FlashAttention": "⚡", "Long": "📜", "Information": "🗜️", "Embeddings": "🧭",
          "Scaling": "📈", "Training": "🎓"}


def _nav_links() -> list[tuple[str, str, str]]:
    """(path, label, icon) for the home page and every page in pages/, in file-name order."""
    links = [("streamlit_app.py", "Home", "🏠")]
    pages = (_ROOT / "pages").glob("[0-9]*_*.py")  # by number: 10_ comes after 9_
    for f in sorted(pages, key=lambda f: (int(f.stem.split("_", 1)[0]), f.name)):
        label = f.stem.split("_", 1)[1].replace("_", " ").replace(" and ", " & ")
        icon = next((i for word, i in _ICONS.items() if label.startswith(word)), "🧪")
        links.append((f"pages/{f.name}", label, icon))
    return links


# A progress bar glides to each new value over half a second: 30 frames a second for half of
# every second a job runs, which a browser on the job's own cores pays for (measured with
# Chromium on 2 cores: 0.05 of a core; a 2-thread job slows by about the fraction of time
# anything else runs, see lmcore.app.job_view).
STILL_PROGRESS = "<style>[data-testid='stProgressBarTrack'] * { transition: none; }</style>"


def page(title: str, icon: str = "🧪", intro: str | None = None) -> Lab:
    """Set the page config, draw the shared sidebar and the title; return this session's Lab."""
    st.set_page_config(page_title=f"{title} · lmcore", page_icon=icon, layout="wide")
    st.html(STILL_PROGRESS)  # style only: goes to the event container, takes no space
    _check_settings(title, icon)
    was_expired = expired()
    if was_expired:
        _empty_session()
    lab = get_lab()
    touch(lab.session_id)  # idle expiry counts from the latest page run
    _sidebar(lab)
    st.title(f"{icon} {title}")
    settings = get_settings()
    if settings.hosted:
        cap_uploads(settings.upload_mb)
        st.info(limits_banner(settings), icon="🔒")
    if was_expired:
        st.warning(f"This session was idle for {settings.idle_seconds / 60:g} minutes, so its "
                   "text, models, runs and jobs were deleted (LMCORE_IDLE_SECONDS). The lab "
                   "starts again on the built-in corpus.", icon="⌛")
    if intro:
        st.markdown(intro)
    return lab


def _empty_session() -> None:
    """Forget everything this session holds: its jobs (stopped), corpus, models, widgets."""
    from lmcore.app.job_view import registry

    reg = registry()
    for job in reg.jobs():
        reg.forget(job.id)  # stops a running one first
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def cap_uploads(mb: int) -> None:
    """Lower Streamlit's server-side upload cap (`server.maxUploadSize`) to lmcore's.

    `deploy/serve.sh` passes it at start; a host that runs `streamlit run` itself (Community
    Cloud) does not, and the uploader's own `max_upload_size` only stops a browser. The upload
    endpoint reads the option on every request, so lowering it here makes the server refuse a
    bigger body (413) before reading it, whoever sends it.
    """
    from streamlit import config

    if config.get_option("server.maxUploadSize") > mb:
        config.set_option("server.maxUploadSize", mb, "lmcore hosted profile (LMCORE_UPLOAD_MB)")
        log.info("server.maxUploadSize lowered to %d MB (LMCORE_UPLOAD_MB)", mb)


def limits_banner(s: Settings) -> str:
    """The hosted demo's limits in one sentence: what a visitor may do on this server."""
    idle = (f"it is deleted after {s.idle_seconds / 60:g} idle minutes" if s.idle_seconds
            else "it is kept while the tab is open")
    text = (f"**Hosted demo limits:** uploads up to {s.upload_mb} MB and "
            f"{s.max_chars:,} characters · models up to {s.max_params:,} parameters · "
            f"{s.max_steps:,} training steps · {s.max_job_seconds:,} s per job · "
            f"{s.max_jobs} job(s) at once on this server. Your text, models and runs live "
            f"only in this browser session: nobody else sees them, {idle}, and closing the "
            "tab deletes them and stops your jobs.")
    changed = s.overridden()
    if changed:
        text += " Set by the host: " + ", ".join(f"`{v}`" for v in changed) + "."
    return text


def _check_settings(title: str, icon: str) -> None:
    """Stop the page with a readable message when an `LMCORE_*` variable cannot be read.

    The page stops rather than falling back to the defaults: a limit its operator meant to set
    (LMCORE_UPLOAD_MB=5MB, LMCORE_MAX_JOBS=one) would otherwise be silently replaced by another.
    """
    try:
        get_settings()
    except ValueError as exc:
        log.error("bad lmcore setting: %s", exc)
        st.title(f"{icon} {title}")
        st.error(f"lmcore cannot run with its current settings: {exc}. Fix or unset this "
                 "environment variable and restart the app (the defaults are listed in "
                 "lmcore/settings.py).", icon="⚠️")
        st.stop()


def _sidebar(lab: Lab) -> None:
    """Current corpus, tokenizer, models and running jobs: what every experiment will use."""
    with st.sidebar:
        st.markdown("### lmcore lab")
        for path, label, icon in _nav_links():
            try:
                st.page_link(path, label=label, icon=icon)
            except StreamlitAPIException:  # a page run as its own entrypoint (AppTest)
                break
        st.divider()
        c = lab.corpus
        st.markdown(f"**Corpus:** {c.name}  \n{c.chars:,} characters · {c.lines:,} lines  \n"
                    f"encoding `{c.encoding}` · `{c.fingerprint[:8]}`")
        if c.entropy_rate is not None:
            st.caption(f"True entropy rate: {c.entropy_rate:.4f} bits/char")
        _state.slot, _state.owner = st.empty(), lab.session_id
        refresh_sidebar(lab)
        _sidebar_jobs()
        s = get_settings()
        st.caption(f"Limits: upload {s.upload_mb} MB · {s.max_chars:,} chars · "
                   f"{s.max_params:,} params · {s.max_steps:,} steps · {s.max_jobs} jobs")


_state = threading.local()  # this script run's sidebar slot (each session runs in a thread)


def refresh_sidebar(lab: Lab) -> None:
    """(Re)draw the sidebar's tokenizer and models lines. A page that changes them calls it:
    the sidebar is drawn before the page body, so it would show the old ones until the next
    rerun."""
    slot = getattr(_state, "slot", None)
    if slot is None or getattr(_state, "owner", None) != lab.session_id:
        return  # no sidebar drawn for this session in this run
    tok = lab.tokenizer
    lines = [f"**Tokenizer:** {tok.kind} ({tok.vocab_size:,} tokens)" if tok
             else "**Tokenizer:** none yet (Corpus page)"]
    lines.append("**Models:** " + ", ".join(f"`{name}`" for name in lab.models) if lab.models
                 else "**Models:** none trained in this session")
    slot.markdown("\n\n".join(lines))


def _sidebar_jobs() -> None:
    from lmcore.app.job_view import registry

    jobs = [j for j in registry().jobs() if j.status in ("waiting", "running")]
    if not jobs:
        return
    st.markdown("**Running jobs:**")
    for job in jobs:
        pct = f"{100 * job.progress:.0f}%" if job.progress else job.status
        st.caption(f"{job.name}: {pct}")


def show_error(exc: BaseException) -> None:
    """One readable error box; the traceback goes to the server log, never to the page."""
    if isinstance(exc, _EXPECTED):
        st.error(str(exc), icon="⚠️")
    else:
        log.error("unexpected error in page:\n%s", "".join(traceback.format_exception(exc)))
        st.error(f"Something went wrong ({type(exc).__name__}: {exc}). Your data is unchanged; "
                 "try smaller settings or another input.", icon="⚠️")


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """`with errors():` turns any exception inside into an error box on the page."""
    try:
        yield
    except Exception as exc:  # Streamlit's stop/rerun are BaseExceptions and pass through
        show_error(exc)


def guard(fn: F) -> F:
    """Decorator form of `errors()`: the function returns None when it failed."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with errors():
            return fn(*args, **kwargs)
        return None

    return wrapper  # type: ignore[return-value]
