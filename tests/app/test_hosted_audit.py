"""Hosted-demo audit: no page opens a path a visitor typed, no visitor makes the server fetch
a URL. Every file or network access in the app layer is listed here with why it is safe; a
new one fails this test until someone reviews it and adds it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apptest import assert_no_exception, open_page  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RISKY = {"open", "Path", "read_text", "read_bytes", "write_text", "write_bytes", "load_model",
         "load_arpa", "urlopen", "Request", "urlretrieve", "from_file", "load", "loads",
         "get", "post", "ChatSummarizer", "connect", "socket", "system", "Popen", "run"}
# (file, callee): why it cannot take a visitor's path or URL
REVIEWED = {
    ("lmcore/app/frame.py", "Path"): "the app's own folder (__file__), for the page list",
    ("lmcore/app/train_job.py", "Path"): "LMCORE_HOME/models/<run id>: both from the server",
    ("pages/3_Transformer.py", "load_model"): "a checkpoint path read from the run store row "
                                              "of a run this session owns (store.get(..., "
                                              "session=scope)), never from a widget",
    ("lmcore/app/session_life.py", "get"): "a dict lookup",
    ("lmcore/app/train_job.py", "load_model"): "the checkpoint the session's own training job "
                                                "wrote into LMCORE_HOME/models/<run id>",
    ("pages/10_Embeddings.py", "load_model"): "the checkpoint folder its own training job "
                                              "returned (job.result), never a widget value",
    ("lmcore/app/longtext_job.py", "Path"): "the job's own private workdir (ctx.workdir)",
    ("lmcore/app/longtext_job.py", "load_model"): "the checkpoint its job saved in its workdir",
    ("pages/6_Long_texts.py", "load"): "the training job's result (its own checkpoint)",
    ("lmcore/app/jobs.py", "open"): "the forkserver's pipe file descriptor",
    ("lmcore/app/provenance.py", "Path"): "lmcore's own source files, named by module strings "
                                          "written in the page code, never a widget value",
    ("lmcore/app/provenance.py", "read_text"): "the same: lmcore's own source file, read to "
                                               "find a function's line",
    ("lmcore/app/jobs.py", "loads"): "unpickles the job payload the server itself pickled "
                                     "for its own worker, over a private pipe",
    ("pages/6_Long_texts.py", "ChatSummarizer"): "the operator's LMCORE_LLM_URL; a visitor "
                                                   "may type one only when LMCORE_ALLOW_LLM_URL "
                                                   "is on (off in both profiles by default)",
}


def _calls() -> set[tuple[str, str]]:
    found = set()
    files = [ROOT / "streamlit_app.py", *sorted((ROOT / "pages").glob("*.py")),
             *sorted((ROOT / "lmcore" / "app").glob("*.py"))]
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
                owner = fn.value if isinstance(fn, ast.Attribute) else None
                # st.session_state.get / dict.get / lab.results.get are not network calls
                if name == "get" and not (isinstance(owner, ast.Name)
                                          and owner.id in {"requests", "httpx", "session"}):
                    continue
                if name in RISKY:
                    found.add((str(f.relative_to(ROOT)), name))
    return found


def test_every_file_or_network_access_in_the_app_is_reviewed():
    unreviewed = _calls() - set(REVIEWED)
    assert not unreviewed, f"review these for visitor-controlled paths or URLs: {unreviewed}"


def test_a_visitor_cannot_type_a_url_in_the_hosted_demo(monkeypatch):
    monkeypatch.setenv("LMCORE_PROFILE", "hosted")
    at = open_page("pages/6_Long_texts.py")
    assert_no_exception(at)
    labels = [t.label for t in at.text_input]
    assert not [lb for lb in labels if "url" in lb.lower()], labels


@pytest.mark.parametrize("var", ["LMCORE_ALLOW_LLM_URL", "LMCORE_SHARED_RUNS"])
def test_the_banner_names_a_host_that_turned_a_guard_off(monkeypatch, var):
    monkeypatch.setenv("LMCORE_PROFILE", "hosted")
    monkeypatch.setenv(var, "1")
    at = open_page("streamlit_app.py")
    banner = [i.value for i in at.info if "Hosted demo limits" in i.value]
    assert banner and f"`{var}`" in banner[0]
