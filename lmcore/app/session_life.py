"""A visitor's session from its first page to its release: activity, idle expiry, clean-up.

Streamlit clears a session's `scope="session"` caches when its tab disconnects (so the job
registry's `on_release` stops its jobs at once), keeps its state for a reconnect for
`server.disconnectedSessionTTL` seconds, and then drops it only when its storage is next
touched. It never closes a tab that stays open but idle. So the frame `touch()`es the session
on every page run, and one sweeper thread per server process:

- expires a session with no page run for `LMCORE_IDLE_SECONDS`: it marks the session and
  asks it to rerun; the frame then empties it (state, jobs) and says why, so the open tab
  shows a fresh lab instead of a stale page, and
- closes a session whose tab has been gone for longer than the reconnect window, which drops
  its `st.session_state` (corpus, tokenizer, models), session caches and uploaded files;

and in the hosted profile deletes the session's runs and checkpoints from the server's private
run store, in both cases.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("lmcore.sessions")


@dataclass
class _Seen:
    last_run: float  # monotonic time of the session's latest page run
    owner: str  # the Lab's session id: the key of its runs in the run store
    gone_since: float | None = None  # first sweep that found its tab disconnected


class Sessions:
    """Which sessions ran a page when; which of them are idle or gone. Plain Python (tested
    without a server); the sweeper feeds it the runtime's view of which tabs are connected."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}
        self._expired: set[str] = set()
        self._lock = threading.Lock()

    def expire(self, sid: str) -> None:
        """Mark `sid` expired: its next page run empties it (`take_expired`)."""
        with self._lock:
            self._expired.add(sid)

    def take_expired(self, sid: str) -> bool:
        """True once if `sid` was marked expired (and clears the mark)."""
        with self._lock:
            if sid in self._expired:
                self._expired.discard(sid)
                return True
            return False

    def touch(self, sid: str, owner: str, now: float | None = None) -> None:
        """Session `sid` (whose Lab is `owner`) ran a page now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._seen[sid] = _Seen(now, owner)

    def __contains__(self, sid: str) -> bool:
        with self._lock:
            return sid in self._seen

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def due(self, now: float, idle_s: float, grace_s: float,
            connected: Callable[[str], bool]) -> list[tuple[str, str, str]]:
        """(sid, owner, why) of every session to close now, removed from the tracker.

        Idle: connected, but no page run for `idle_s` seconds (0 = never). Gone: not connected
        for `grace_s` seconds in a row (a reconnect within that window resets it).
        """
        out = []
        with self._lock:
            for sid, s in list(self._seen.items()):
                if connected(sid):
                    s.gone_since = None
                    if idle_s > 0 and now - s.last_run >= idle_s:
                        out.append((sid, s.owner, f"idle for {now - s.last_run:.0f} s"))
                else:
                    s.gone_since = now if s.gone_since is None else s.gone_since
                    if now - s.gone_since >= grace_s:
                        out.append((sid, s.owner, "tab closed"))
            for sid, _, _ in out:
                del self._seen[sid]
        return out


def delete_session_runs(owner: str) -> int:
    """Delete every run recorded by Lab session `owner`, with its checkpoint folder."""
    from lmcore.runs.store import RunStore

    store = RunStore()
    runs = store.list(session=owner)
    for r in runs:
        store.delete(r.id, session=owner, remove_model=True)
    return len(runs)


# --- the server side (needs Streamlit's runtime) -----------------------------------------

SESSIONS = Sessions()
_sweeper: threading.Thread | None = None
_sweeper_lock = threading.Lock()
released: list[tuple[str, str]] = []  # (sid, why) of the latest releases, for the log/tests


def _session_id() -> str | None:
    """The current browser session's id, or None outside a served app (AppTest, bare mode)."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists() \
            or not Runtime.instance().is_active_session(ctx.session_id):
        return None
    return ctx.session_id


def expired() -> bool:
    """True (once) when the sweeper expired this session since its last page run."""
    sid = _session_id()
    return sid is not None and SESSIONS.take_expired(sid)


def touch(owner: str) -> None:
    """Record a page run of the current session and make sure the sweeper runs."""
    sid = _session_id()
    if sid is None:
        return
    SESSIONS.touch(sid, owner)
    _start_sweeper()


def _start_sweeper() -> None:
    global _sweeper
    with _sweeper_lock:
        if _sweeper is None or not _sweeper.is_alive():
            _sweeper = threading.Thread(target=_sweep_forever, name="lmcore-session-sweeper",
                                        daemon=True)
            _sweeper.start()


def _sweep_forever() -> None:
    from streamlit import config
    from streamlit.runtime import Runtime

    from lmcore.settings import get_settings

    ended, sweeps = False, 0
    while Runtime.exists():
        sweeps += 1
        try:
            # the sessions ended last sweep have been shut down by now; Streamlit also closes
            # sessions by itself (a tab gone past its reconnect time), so trim every minute too
            if ended or sweeps % 12 == 0:
                return_memory()
            s = get_settings()
            rt = Runtime.instance()
            grace = float(config.get_option("server.disconnectedSessionTTL"))
            due = SESSIONS.due(time.monotonic(), s.idle_seconds, grace, rt.is_active_session)
            for sid, owner, why in due:
                _end(rt, sid, owner, why, s.hosted)
            ended = bool(due)
            period = min(5.0, s.idle_seconds / 4) if s.idle_seconds else 5.0
        except Exception:  # the sweeper must outlive any one bad sweep
            log.exception("session sweep failed")
            period = 5.0
        time.sleep(max(period, 0.5))


def return_memory() -> int:
    """Collect, then hand the heap's free pages back to the system; the bytes returned.

    Why: a closed session's objects are freed, but glibc keeps freed small blocks in its
    arenas, so the server's resident memory would ratchet up as visitors come and go
    (tests/app/test_session_memory.py: 200 MB freed comes back only with the trim). Arrow's
    own allocator (mimalloc), which Streamlit's tables and charts go through, keeps its freed
    pages too until asked: 40 tables of 200,000 rows freed left 35 MB more than before them
    after the trim, 11 MB once its pool released them.
    """
    from lmcore.train.memory import rss_bytes

    before = rss_bytes()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass
    arrow = sys.modules.get("pyarrow")  # (Streamlit imports it; never imported for this)
    release = getattr(arrow.default_memory_pool(), "release_unused", None) if arrow else None
    if release is not None:
        release()
    return max(0, before - rss_bytes())


def _end(rt, sid: str, owner: str, why: str, hosted: bool) -> None:  # noqa: ANN001
    """Expire (open tab) or close (tab gone) session `sid` on the server's event loop; delete
    its runs and checkpoints (hosted profile)."""
    log.info("ending session %s (%s)", sid, why)
    idle = why != "tab closed"
    if idle:
        SESSIONS.expire(sid)

    def end() -> None:  # on the event loop: AppSession and Runtime calls are not thread-safe
        app = rt.get_app_session(sid)
        if idle and app is not None:
            rt.uploaded_file_mgr.remove_session_files(sid)
            app.request_rerun(None)  # the frame empties it and tells the visitor why
        else:
            rt.close_session(sid)  # shuts it down: session caches released, state dropped

    try:
        rt._get_async_objs().eventloop.call_soon_threadsafe(end)
    except Exception:  # the server is stopping
        log.exception("could not close session %s", sid)
    if hosted:
        try:
            n = delete_session_runs(owner)
            log.info("deleted %d run(s) of session %s", n, sid)
        except Exception:
            log.exception("could not delete the runs of session %s", sid)
    released.append((sid, why))
    del released[:-100]
