"""AppTest of the Long-texts page: renders, refuses bad settings, runs strategies and a tree."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from apptest import assert_no_exception, error_texts, goto, join_jobs, open_app, open_page

PAGE = "pages/6_Long_texts.py"
TRAIN = "Train a tiny Transformer now"
NGRAM = "Fit a 3-gram now (instant)"


def _small(at, chars: int = 1500, model: str | None = NGRAM):
    first_n = next(n for n in at.number_input if n.label.startswith("Use the first"))
    first_n.set_value(chars).run()
    assert_no_exception(at)
    if model is not None:
        at.selectbox(key="lt.model").set_value(model).run()
        assert_no_exception(at)
    return at


def _wait_for(at, predicate, timeout: float = 40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        at.run()
        assert_no_exception(at)
        if predicate(at):
            return at
    raise AssertionError(f"timed out; errors: {error_texts(at)}")


def _wait_for_jobs(at, timeout: float = 90):
    """AppTest cannot run the polling timer: join the job threads, then rerun the script."""
    join_jobs(timeout)
    at.run()
    assert_no_exception(at)
    return at


def _frame(at, column):
    """The first table on the page with `column` (AppTest dataframes carry no keys)."""
    for d in at.dataframe:
        if column in d.value.columns:
            return d.value
    return None


def _figure(at, key: str) -> dict | None:
    """The plotly figure (as JSON) drawn with widget key `key`, None if there is none."""
    for e in at.get("plotly_chart"):
        if e.proto.id.endswith("-" + key):
            return json.loads(e.proto.spec)
    return None


def _paste(at, text: str):
    at.radio(key="longtext.source").set_value("Paste text").run()
    at.text_area(key="longtext.paste").set_value(text).run()
    at.button(key="longtext.use").click().run()
    assert_no_exception(at)
    return at


def test_page_opens_offering_the_tiny_transformer_first_without_training_it():
    at = open_page(PAGE)
    assert at.selectbox(key="lt.model").value == TRAIN
    assert any("tiled (FlashAttention) attention" in i.value for i in at.info)
    assert at.button(key="lt.train").proto.type == "primary"
    assert not at.get("progress")  # nothing was started by opening the page
    assert any("Train the tiny Transformer above first" in i.value for i in at.info)
    assert _frame(at, "overlap") is not None  # chunking works before any model exists
    assert not error_texts(at)


def test_a_transformer_in_the_session_is_the_default_model():
    import torch

    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.models.ngram import NGramLM
    from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM

    at = goto(open_app(), PAGE)
    lab = at.session_state["lmcore.lab"]
    tok = train_tokenizer("char", lab.corpus.split().train[:20_000])
    torch.manual_seed(0)
    net = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=32, n_layer=1,
                                        n_head=2, n_embd=16))
    lab.models["a bigram"] = NGramLM.from_tokenizer(tok, "abc abd", order=2)
    lab.models["my GPT"] = TransformerLM(net, tok)
    goto(goto(at, "pages/1_Corpus_and_tokenizers.py"), PAGE)  # trained elsewhere, then back
    box = at.selectbox(key="lt.model")
    assert box.value == "my GPT" and box.options[:2] == ["my GPT", "a bigram"]
    assert box.options[2:] == [TRAIN, NGRAM]
    assert any("context: 32 tokens" in c.value for c in at.caption)
    assert at.radio(key="lt.attn").value == "tiled" and not at.radio(key="lt.attn").disabled
    assert at.number_input(key="lt.window").value == 32


def test_page_renders_with_builtin_corpus_and_an_ngram():
    at = _small(open_page(PAGE))
    assert not error_texts(at)
    assert at.selectbox(key="lt.model").value == NGRAM
    assert any("3-gram" in i.value for i in at.info)
    assert any("train the tiny Transformer" in c.value for c in at.caption)
    table = _frame(at, "overlap")
    assert len(table) >= 2 and table["overlap"].max() > 0
    assert table["start"].is_monotonic_increasing


@pytest.mark.parametrize("chars", [50, 600, 1620])
def test_a_very_short_paste_says_what_to_do_not_a_traceback(chars):
    text = ("The cat sat on the mat. A dog ran past it! " * 60)[:chars]
    at = _paste(open_page(PAGE), text)
    assert not at.exception
    notes = [i.value for i in at.info]
    assert any("characters: the long-text tools need at least 200" in n for n in notes), notes
    if chars >= 200:  # the whole text is long enough, the held-out tenth is not
        assert any("choose 'Whole corpus'" in n for n in notes)
        at.radio(key="lt.part").set_value("Whole corpus").run()
        assert_no_exception(at)
        first_n = next(n for n in at.number_input if n.label.startswith("Use the first"))
        assert first_n.value == chars and first_n.min == 200
        assert _frame(at, "overlap") is not None
    else:
        assert not any("Whole corpus" in n for n in notes)
        at.radio(key="lt.part").set_value("Whole corpus").run()
        assert_no_exception(at)
        assert any("This text has only 50 characters" in i.value for i in at.info)


def test_bad_settings_show_errors_not_tracebacks(monkeypatch):
    monkeypatch.setenv("LMCORE_ALLOW_LLM_URL", "1")
    at = _small(open_page(PAGE))
    at.number_input(key="lt.size").set_value(16).run()
    at.number_input(key="lt.overlap").set_value(20).run()
    assert_no_exception(at)
    assert any("overlap" in e for e in error_texts(at))
    at.number_input(key="lt.overlap").set_value(4).run()
    at.number_input(key="lt.window").set_value(32).run()
    at.number_input(key="lt.stride").set_value(64).run()
    assert_no_exception(at)
    assert any("stride" in e for e in error_texts(at))
    at.radio(key="lt.sumkind").set_value("OpenAI-compatible chat endpoint").run()
    at.text_input(key="lt.url").set_value("localhost:11434").run()
    at.button(key="lt.sum.run").click().run()
    assert_no_exception(at)
    assert any("http://" in e for e in error_texts(at))


def test_strategies_run_as_a_job_with_live_memory_windows_and_a_stride_sweep():
    at = _small(open_page(PAGE))
    at.number_input(key="lt.window").set_value(64).run()
    at.number_input(key="lt.stride").set_value(16).run()
    at.button(key="lt.run").click().run()
    assert_no_exception(at)
    at = _wait_for_jobs(at)
    rows = _frame(at, "share of text scored")
    assert list(rows["strategy"]) == ["truncation", "disjoint", "sliding"]
    assert rows.loc[1, "share of text scored"] == 1.0 and rows.loc[2, "share of text scored"] == 1.0
    assert rows.loc[0, "tokens scored"] == 64
    assert (rows["bits/char"] > 0).all()
    benefit = next(m.value for m in at.markdown if m.value.startswith("**Context benefit:"))
    gain = rows.loc[1, "bits/char"] - rows.loc[2, "bits/char"]
    assert f"{gain:+.3f} bits/char" in benefit and "at least 48 tokens" in benefit
    assert any("Truncation scores only its first window" in c.value for c in at.caption)
    # the live memory figure: RSS per strategy and a marker where each window ended
    mem = _figure(at, "lt.mem")
    assert mem is not None
    names = [t["name"] for t in mem["data"]]
    assert {"truncation RSS", "disjoint RSS", "sliding S=16 RSS"} <= set(names)
    ends = {t["name"]: t for t in mem["data"] if t["name"].endswith("window ends")}
    assert set(ends) == {"truncation window ends", "disjoint window ends",
                         "sliding S=16 window ends"}
    assert all(t["mode"] == "markers" for t in ends.values())
    # the per-window table: one row per window of every strategy, with the RSS at its end
    win = _frame(at, "RSS (MB)")
    assert win is not None and (win["RSS (MB)"] > 0).all()
    per = win.groupby("strategy").size().to_dict()
    assert per["truncation"] == 1 == len(ends["truncation window ends"]["x"])
    assert per["disjoint"] == len(ends["disjoint window ends"]["x"]) > 1
    assert per["sliding S=16"] > per["disjoint"]
    assert win[win.strategy == "disjoint"]["tokens"].sum() == rows.loc[1, "tokens scored"]
    # the stride sweep: bits/char against S = C, C/2, ... as a job, drawn from its series
    at.button(key="lt.sweep.run").click().run()
    assert_no_exception(at)
    at = _wait_for_jobs(at)
    sweep = _figure(at, "lt.sweep")
    assert sweep is not None
    bpc = next(t for t in sweep["data"] if t["name"] == "bits/char")
    assert bpc["x"] == [2, 4, 8, 16, 32, 64] and all(y > 0 for y in bpc["y"])
    assert "Smaller strides" in sweep["layout"]["title"]["text"]


def test_summary_tree_and_continuation_as_jobs():
    at = _small(open_page(PAGE), 3000)
    at.number_input(key="lt.budget").set_value(200).run()
    at.number_input(key="lt.sumchunk").set_value(600).run()
    at.button(key="lt.sum.run").click().run()
    at = _wait_for(at, lambda a: any(e.label.startswith("summary") for e in a.expander))
    assert any("surprisal" in c.value for c in at.caption)
    levels = [e.label for e in at.expander if "source chunk" in e.label]
    assert len(levels) >= 4
    at.number_input(key="lt.n").set_value(20).run()
    at.button(key="lt.cont.run").click().run()
    assert_no_exception(at)
    at = _wait_for_jobs(at)
    assert any("longtext-continue: done" in s.value for s in at.success)
    assert any("⟶" in c.value for c in at.code)
    assert any("out of its view" in c.value for c in at.caption)


def test_continuation_mistakes_are_reported_by_the_job():
    at = _small(open_page(PAGE))
    at.number_input(key="lt.cwin").set_value(10).run()
    at.number_input(key="lt.n").set_value(20).run()
    at.button(key="lt.cont.run").click().run()
    at = _wait_for_jobs(at)
    assert any("shorter than the window" in e for e in error_texts(at))


# --- the chat endpoint: only where the operator allows it -----------------------------------

class _Stub(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.seen.append(self.path)
        text = body["messages"][-1]["content"].split("\n\n", 1)[1]
        data = json.dumps({"choices": [{"message": {"content": text[:40]}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Stub.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _endpoint(at):
    at.radio(key="lt.sumkind").set_value("OpenAI-compatible chat endpoint").run()
    assert_no_exception(at)
    return at


def test_hosted_default_without_a_configured_endpoint_disables_it(monkeypatch):
    monkeypatch.delenv("LMCORE_ALLOW_LLM_URL", raising=False)
    monkeypatch.delenv("LMCORE_LLM_URL", raising=False)
    at = _endpoint(_small(open_page(PAGE)))
    assert not any(t.key == "lt.url" for t in at.text_input)  # no field to type a URL into
    assert any("endpoint summarizer is disabled on this server" in i.value for i in at.info)
    assert at.button(key="lt.sum.run").disabled


def test_hosted_demo_uses_only_the_configured_endpoint(monkeypatch, stub):
    monkeypatch.setenv("LMCORE_ALLOW_LLM_URL", "0")
    monkeypatch.setenv("LMCORE_LLM_URL", stub)
    at = _endpoint(_small(open_page(PAGE), 1200))
    assert not any(t.key == "lt.url" for t in at.text_input)
    assert any(stub in c.value and "cannot choose another" in c.value for c in at.caption)
    at.number_input(key="lt.sumchunk").set_value(400).run()
    at.button(key="lt.sum.run").click().run()
    at = _wait_for_jobs(at)
    assert _Stub.seen and set(_Stub.seen) == {"/v1/chat/completions"}
    assert any(f"at {stub}/v1/chat/completions" in c.value for c in at.caption)


def test_visitor_url_only_when_allowed(monkeypatch, stub):
    monkeypatch.setenv("LMCORE_ALLOW_LLM_URL", "1")
    monkeypatch.setenv("LMCORE_LLM_URL", "http://127.0.0.1:9")
    at = _endpoint(_small(open_page(PAGE), 1200))
    assert at.text_input(key="lt.url").value == "http://127.0.0.1:9"  # the configured one
    at.text_input(key="lt.url").set_value(stub + "/v1").run()
    at.number_input(key="lt.sumchunk").set_value(400).run()
    at.button(key="lt.sum.run").click().run()
    at = _wait_for_jobs(at)
    assert _Stub.seen and not error_texts(at)
    assert any(e.label.startswith("summary") for e in at.expander)


# --- the tiled model -------------------------------------------------------------------------

@pytest.mark.slow  # importing torch.optim (dynamo) alone takes seconds on a loaded machine
def test_tiny_transformer_trains_as_a_job_and_runs_tiled():
    at = _small(open_page(PAGE), 1200, model=None)
    assert at.selectbox(key="lt.model").value == TRAIN
    at.number_input(key="lt.qsteps").set_value(3).run()
    at.button(key="lt.train").click().run()
    assert_no_exception(at)
    at = _wait_for(at, lambda a: a.selectbox(key="lt.model").value.startswith("tiny"), 90)
    assert any("bits/char on the validation split" in s.value for s in at.success)
    assert any("tiny Transformer" in m.value for m in at.sidebar.markdown)
    at.multiselect(key="lt.strategies").set_value(["truncation", "sliding"]).run()
    at.number_input(key="lt.window").set_value(64).run()
    at.number_input(key="lt.stride").set_value(32).run()
    at.button(key="lt.run").click().run()
    at = _wait_for(at, lambda a: _frame(a, "share of text scored") is not None, 90)
    rows = _frame(at, "share of text scored")
    assert list(rows["attention"]) == ["tiled", "tiled"]
    assert rows.loc[1, "share of text scored"] == 1.0


def test_pasted_chinese_text_chunks_and_summarizes():
    at = open_page(PAGE)
    zh = ("语言模型预测下一个字。上下文越长，模型看到的文本越多！长文本放不进上下文；"
          "滑动窗口给每个字一些上下文。") * 60
    _paste(at, zh)
    at.radio(key="lt.part").set_value("Whole corpus").run()
    at.selectbox(key="lt.model").set_value(NGRAM).run()
    at.number_input(key="lt.size").set_value(40).run()
    at.number_input(key="lt.overlap").set_value(8).run()
    assert_no_exception(at)
    assert not error_texts(at)
    table = _frame(at, "overlap")
    assert len(table) > 20 and (table["tokens"] <= 40).all()
    at.number_input(key="lt.budget").set_value(60).run()
    at.number_input(key="lt.sumchunk").set_value(300).run()
    at.button(key="lt.sum.run").click().run()
    at = _wait_for(at, lambda a: any(e.label.startswith("summary") for e in a.expander))
    summary = at.info[-1].value
    assert 0 < len(summary) <= 60 and summary.endswith(("。", "！", "；"))


def test_results_of_another_corpus_never_show_under_this_ones_name():
    at = _small(open_page(PAGE), 1500)
    at.multiselect(key="lt.strategies").set_value(["disjoint"]).run()
    at.number_input(key="lt.window").set_value(32).run()
    at.button(key="lt.run").click().run()
    at.number_input(key="lt.budget").set_value(200).run()
    at.number_input(key="lt.sumchunk").set_value(600).run()
    at.button(key="lt.sum.run").click().run()
    at = _wait_for_jobs(at)
    assert _frame(at, "share of text scored") is not None
    assert any(c.value.startswith("Results on the first 1,500 characters") for c in at.caption)
    assert any(e.label.startswith("summary") for e in at.expander)
    _paste(at, "A different text entirely, about rivers and mountains. " * 40)
    at.radio(key="lt.part").set_value("Whole corpus").run()
    at.selectbox(key="lt.model").set_value(NGRAM).run()
    assert_no_exception(at)
    assert _frame(at, "share of text scored") is None and _figure(at, "lt.mem") is None
    assert not any(e.label.startswith(("summary", "source chunk")) for e in at.expander)
    assert not any(c.value.startswith(("Results on", "Summary of")) for c in at.caption)
