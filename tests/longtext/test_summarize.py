"""Summary tree: budget respected, structure sound; extractive scorer; chat endpoint via a stub."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lmcore.data.tokenizers import train_tokenizer
from lmcore.longtext.summarize import (
    ChatSummarizer,
    ExtractiveSummarizer,
    SummarizerError,
    chat_url,
    fit_budget,
    sentence_spans,
    sentences,
    summarize_tree,
    summary_calls,
)
from lmcore.models.ngram import NGramLM

EN = ("Language models predict the next token. A model with a longer context sees more "
      "text. The cat sat on the mat. Entropy measures surprise in bits. Long texts do not fit "
      "into the context. A sliding window gives every token some context.\n\n")
ZH = "语言模型预测下一个字。上下文越长，模型看到的文本越多！猫坐在垫子上。熵用比特衡量意外；长文本放不进上下文。"


def test_sentences_in_chinese_and_english():
    assert sentences(ZH) == ["语言模型预测下一个字。", "上下文越长，模型看到的文本越多！",
                             "猫坐在垫子上。", "熵用比特衡量意外；", "长文本放不进上下文。"]
    assert sentences("Dr. Who? Yes. e.g.x stays.\n\nNew paragraph") == \
        ["Dr.", "Who?", "Yes.", "e.g.x stays.", "New paragraph"]
    for s, e in sentence_spans(EN + ZH):
        assert (EN + ZH)[s:e].strip() == (EN + ZH)[s:e] and e > s


def test_fit_budget_cuts_at_a_sentence_end_or_with_an_ellipsis():
    assert fit_budget(ZH, 25) == "语言模型预测下一个字。"
    assert fit_budget("one two three four", 9) == "one two…"
    assert len(fit_budget("x" * 100, 10)) == 10


def _check_tree(root, text, budget, fan_in):
    assert len(root.text) <= budget
    leaves = [n for n in root.walk() if n.level == 0]
    assert leaves and all(text[n.start:n.end] == n.text for n in leaves)
    for node in root.walk():
        if node.level == 0:
            assert not node.children
            continue
        assert 1 <= len(node.children) <= fan_in
        assert len(node.text) <= budget
        assert all(c.level < node.level for c in node.children)
        assert node.start == node.children[0].start and node.end == node.children[-1].end
        assert all(a.end <= b.end for a, b in zip(node.children, node.children[1:],
                                                  strict=False))
    return leaves


@pytest.mark.parametrize("text", [EN * 12, ZH * 20])
def test_tree_respects_budget_and_structure(text):
    calls = []
    root = summarize_tree(text, ExtractiveSummarizer(), budget=120, chunk_size=200,
                          fan_in=3, on_node=lambda n, done, total: calls.append((done, total)))
    leaves = _check_tree(root, text, 120, 3)
    assert len(leaves) >= 4 and root.level >= 3
    assert calls[-1] == (len(calls), summary_calls(len(leaves), 3))
    # every summary sentence is a sentence of the source (extractive)
    source = set(sentences(text))
    assert all(s in source for s in sentences(root.text)), root.text


def test_extractive_without_model_uses_centrality_and_says_so():
    s = ExtractiveSummarizer()
    assert "no model" in s.method
    text = ("Tokens carry bits. Tokens carry bits of surprise. Bits of surprise are entropy. "
            "Bananas are yellow.")
    out = s.summarize(text, 40)
    assert len(out) <= 40 and "Bananas" not in out
    picked = [x for x in s.last_scores if x.picked]
    assert picked and all(x.salience is None for x in s.last_scores)


def test_model_surprisal_drives_salience():
    train = "the cat sat on the mat. " * 40
    tok = train_tokenizer("char", train + "zebras vex quirky jumping fowl")
    lm = NGramLM.from_tokenizer(tok, train, order=3, smoothing="kn")
    text = "the cat sat on the mat. zebras vex quirky jumping fowl."
    s = ExtractiveSummarizer(lm, tok, salience_weight=1.0)
    assert "surprisal" in s.method
    assert s.summarize(text, 35) == "zebras vex quirky jumping fowl."
    cat, zebra = s.last_scores
    assert zebra.bits_per_char > 2 * cat.bits_per_char
    assert (cat.salience, zebra.salience) == (0.0, 1.0) and zebra.picked and not cat.picked
    # the same text scored by centrality alone has no salience at all
    assert all(x.salience is None for x in ExtractiveSummarizer().score(text))


def test_transformer_salience_through_the_window_scorer():
    import torch

    from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM

    tok = train_tokenizer("char", EN + ZH)
    torch.manual_seed(0)
    lm = TransformerLM(Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=32,
                                                     n_layer=1, n_head=2, n_embd=16)), tok)
    s = ExtractiveSummarizer(lm, tok)
    out = s.summarize(EN, 120)  # the text is longer than the context: sliding windows
    assert 0 < len(out) <= 120
    assert all(x.bits_per_char > 0 and 0 <= x.salience <= 1 for x in s.last_scores)
    assert {x.salience for x in s.last_scores} >= {0.0, 1.0}


def test_mmr_avoids_picking_a_duplicate():
    text = "Entropy is surprise in bits. Entropy is surprise in bits. Models compress text."
    out = ExtractiveSummarizer(mmr_lambda=0.5).summarize(text, 60)
    assert out.count("Entropy is surprise in bits.") == 1 and "Models compress" in out


def test_summarizer_arguments_are_checked():
    with pytest.raises(ValueError, match="both"):
        ExtractiveSummarizer(model=object())
    with pytest.raises(ValueError, match="budget"):
        summarize_tree(EN, ExtractiveSummarizer(), budget=0, chunk_size=50)
    with pytest.raises(ValueError, match="empty"):
        summarize_tree("   ", ExtractiveSummarizer(), budget=10, chunk_size=50)
    with pytest.raises(ValueError, match="fan_in"):
        summarize_tree(EN, ExtractiveSummarizer(), budget=10, chunk_size=50, fan_in=1)


# --- the chat endpoint, against a stub server on 127.0.0.1 ---------------------------------

class _Stub(BaseHTTPRequestHandler):
    mode = "ok"
    seen: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.seen.append((self.path, dict(self.headers), body))
        if _Stub.mode == "500":
            self._send(500, b'{"error": "model not loaded"}')
        elif _Stub.mode == "badjson":
            self._send(200, b"<html>not json</html>")
        elif _Stub.mode == "shape":
            self._send(200, b'{"result": "no choices here"}')
        elif _Stub.mode == "slow":
            time.sleep(0.6)
            with contextlib.suppress(OSError):  # the client has given up by now
                self._send(200, b"{}")
        else:  # "summarize": the first sentence of the text, then a long tail to be cut
            text = body["messages"][-1]["content"].split("\n\n", 1)[1]
            reply = sentences(text)[0] + " " + "padding " * 100
            self._send(200, json.dumps({"choices": [{"message": {
                "role": "assistant", "content": reply}}]}).encode())

    def _send(self, code, data):
        self.send_response(code)
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
    _Stub.mode, _Stub.seen = "ok", []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_chat_summarizer_through_the_stub_builds_a_tree(stub):
    chat = ChatSummarizer(stub, "tiny-model", api_key="secret", timeout=5)
    root = summarize_tree(EN * 4, chat, budget=90, chunk_size=300, fan_in=2)
    _check_tree(root, EN * 4, 90, 2)
    path, headers, body = _Stub.seen[0]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer secret"
    assert body["model"] == "tiny-model" and body["messages"][-1]["role"] == "user"
    assert "at most 90 characters" in body["messages"][-1]["content"]
    assert root.text == "Language models predict the next token."


@pytest.mark.parametrize("mode, message", [
    ("500", "HTTP 500"), ("badjson", "did not answer with JSON"), ("shape", "choices"),
])
def test_chat_errors_are_clear(stub, mode, message):
    _Stub.mode = mode
    with pytest.raises(SummarizerError, match=message) as err:
        ChatSummarizer(stub + "/v1", "m", timeout=5).summarize("Some text here.", 50)
    assert stub in str(err.value)
    if mode == "500":
        assert "model not loaded" in str(err.value)


def test_chat_timeout_is_reported(stub):
    _Stub.mode = "slow"
    with pytest.raises(SummarizerError, match="within 0.2 s"):
        ChatSummarizer(stub, "m", timeout=0.2).summarize("Some text.", 50)


def test_connection_refused_is_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SummarizerError, match="connection refused"):
        ChatSummarizer(f"http://127.0.0.1:{port}", "m", timeout=2).summarize("Text.", 50)


def test_chat_url_forms_and_bad_urls():
    assert chat_url("http://h:1") == "http://h:1/v1/chat/completions"
    assert chat_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert chat_url("https://h/v1/chat/completions") == "https://h/v1/chat/completions"
    for bad in ("file:///etc/passwd", "localhost:11434", ""):
        with pytest.raises(SummarizerError, match="http"):
            chat_url(bad)
    with pytest.raises(SummarizerError, match="model"):
        ChatSummarizer("http://h:1", " ")
