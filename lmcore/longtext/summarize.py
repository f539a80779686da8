"""Hierarchical (map-reduce) summarization of a long text, offline by default.

The tree: split the text into chunks (level 0), summarize each chunk (level 1), join the
summaries of `fan_in` neighbours and summarize again (level 2, ...) until one summary remains
and it fits the budget. Every node keeps its children and the span of source text it covers.

The default summarizer is extractive and needs no network: it picks whole sentences by

    score(s) = w · salience(s) + (1 − w) · centrality(s)
    pick     = argmax_s  λ · score(s) − (1 − λ) · max_{t picked} cos(s, t)      (MMR)

- salience: the sentence's mean surprisal under the lmcore model, in bits per character,
  given the text before it in the same chunk, min-max scaled to [0, 1] within the chunk.
  Sentences the model finds predictable (boilerplate, repetition) score low;
- centrality: TF-IDF cosine similarity of the sentence to the whole chunk (terms: words, and
  for Chinese single characters and character bigrams), so a surprising but off-topic
  sentence does not win on salience alone;
- redundancy (MMR, Carbonell & Goldstein 1998): a candidate similar to an already picked
  sentence is penalised.

Without a model the score is centrality alone (`ExtractiveSummarizer.method` says so).
`ChatSummarizer` sends each chunk to an OpenAI-compatible `/v1/chat/completions` endpoint (a
local Ollama or vLLM server) instead; only the standard library is used for HTTP.
"""

from __future__ import annotations

import json
import math
import re
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from lmcore.longtext.chunking import Encoder, Unit, split_text
from lmcore.longtext.rouge import tokenize as words
from lmcore.models.lm import LanguageModel

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer

_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
# A sentence ends after Chinese 。！？；… (and closing quotes), after English .!? (and closing
# quotes/brackets) followed by whitespace, or at a blank line.
_SENT_END = re.compile(r"[。！？；…]+[”’」』）\"')]*|[.!?]+[\"')\]”’]*(?=\s)|\n\s*\n")


class SummarizerError(ValueError):
    """A summarizer could not produce a summary; the message says why and what to do."""


class Summarizer(Protocol):
    """Anything that shortens a text to at most `max_chars` characters."""

    name: str

    def summarize(self, text: str, max_chars: int) -> str: ...


# --- sentences and budget ----------------------------------------------------------------

def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, whitespace trimmed; works for Chinese and English."""
    spans, start = [], 0
    for m in _SENT_END.finditer(text):
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def sentences(text: str) -> list[str]:
    """The sentences of `text` (see `sentence_spans`)."""
    return [text[s:e] for s, e in sentence_spans(text)]


def join_sentences(parts: Sequence[str]) -> str:
    """Join sentences with a space between Latin-script ones and nothing after Chinese ones."""
    out = ""
    for p in parts:
        if out and not (_CJK_CHAR.match(out[-1]) or out[-1] in "。！？；…”’」』）"):
            out += " "
        out += p
    return out


def fit_budget(text: str, max_chars: int) -> str:
    """`text` cut to `max_chars`: at the last sentence end that fits, else with an ellipsis."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    kept = ""
    for s in sentences(text):
        longer = join_sentences([kept, s]) if kept else s
        if len(longer) > max_chars:
            break
        kept = longer
    if kept:
        return kept
    return text[: max(max_chars - 1, 0)].rstrip() + "…" if max_chars > 1 else text[:max_chars]


# --- the extractive summarizer -------------------------------------------------------------

def terms(sentence: str) -> list[str]:
    """TF-IDF terms: lower-cased words; Chinese characters and their bigrams."""
    toks = words(sentence)
    bigrams = [a + b for a, b in zip(toks, toks[1:], strict=False)
               if len(a) == 1 and len(b) == 1 and _CJK_CHAR.match(a) and _CJK_CHAR.match(b)]
    return toks + bigrams


def tfidf(docs: Sequence[Sequence[str]]) -> tuple[np.ndarray, list[str]]:
    """(n_docs, n_terms) L2-normalised TF-IDF rows (smoothed idf = ln((1+n)/(1+df)) + 1)."""
    vocab = sorted({t for d in docs for t in d})
    index = {t: i for i, t in enumerate(vocab)}
    m = np.zeros((len(docs), len(vocab)), dtype=np.float64)
    for r, d in enumerate(docs):
        for t, c in Counter(d).items():
            m[r, index[t]] = c
    df = (m > 0).sum(axis=0)
    m *= np.log((1 + len(docs)) / (1 + df)) + 1.0
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms > 0, norms, 1.0), vocab


@dataclass(frozen=True)
class SentenceScore:
    """Why a sentence was or was not picked."""

    start: int
    end: int
    salience: float | None  # scaled mean surprisal, None without a model
    bits_per_char: float | None
    centrality: float
    score: float
    picked: bool


class ExtractiveSummarizer:
    """Pick sentences by model surprisal + TF-IDF centrality − MMR redundancy (see module)."""

    def __init__(self, model: LanguageModel | None = None, tokenizer: Tokenizer | None = None, *,
                 salience_weight: float = 0.5, mmr_lambda: float = 0.7,
                 window: int | None = None):
        if (model is None) != (tokenizer is None):
            raise ValueError("give both a model and its tokenizer, or neither")
        if not 0 <= salience_weight <= 1 or not 0 <= mmr_lambda <= 1:
            raise ValueError("salience_weight and mmr_lambda must be in [0, 1]")
        self.model, self.tokenizer = model, tokenizer
        self.salience_weight, self.mmr_lambda, self.window = salience_weight, mmr_lambda, window
        self.name = "extractive"
        self.last_scores: list[SentenceScore] = []

    @property
    def method(self) -> str:
        """How sentences are scored, in words (shown beside the tree)."""
        if self.model is None:
            return ("extractive: TF-IDF centrality with MMR redundancy (no model given, so "
                    "no surprisal salience)")
        return (f"extractive: {self.salience_weight:g}·surprisal salience + "
                f"{1 - self.salience_weight:g}·TF-IDF centrality, MMR λ={self.mmr_lambda:g}")

    def _bits_per_char(self, text: str, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """Mean surprisal (bits/char) of each sentence given the chunk text before it."""
        from lmcore.longtext.strategies import char_bounds, token_bits

        ids, offsets = self.tokenizer.encode_offsets(text)
        if not ids:
            return np.zeros(len(spans))
        bits = token_bits(self.model, ids, window=self.window)
        bounds = char_bounds(offsets, len(text))
        owner = np.searchsorted(np.array([s for s, _ in spans]), bounds[:-1], side="right") - 1
        out = np.zeros(len(spans))
        for i in range(len(spans)):
            sel = owner == i
            chars = int(np.diff(bounds)[sel].sum())
            out[i] = bits[sel].sum() / chars if chars else 0.0
        return out

    def score(self, text: str) -> list[SentenceScore]:
        """Every sentence's salience, centrality and combined score (nothing picked yet)."""
        spans = sentence_spans(text)
        if not spans:
            return []
        vecs, _ = tfidf([terms(text[s:e]) for s, e in spans])
        whole = vecs.sum(axis=0)
        whole /= np.linalg.norm(whole) or 1.0
        central = vecs @ whole
        if self.model is not None:
            bpc = self._bits_per_char(text, spans)
            lo, hi = float(bpc.min()), float(bpc.max())
            sal = (bpc - lo) / (hi - lo) if hi > lo else np.full(len(spans), 0.5)
            w = self.salience_weight
            total = w * sal + (1 - w) * central
            return [SentenceScore(s, e, float(a), float(b), float(c), float(t), False)
                    for (s, e), a, b, c, t in zip(spans, sal, bpc, central, total, strict=True)]
        return [SentenceScore(s, e, None, None, float(c), float(c), False)
                for (s, e), c in zip(spans, central, strict=True)]

    def summarize(self, text: str, max_chars: int) -> str:
        """The best sentences (MMR order of picking, document order in the output)."""
        if max_chars < 1:
            raise ValueError(f"the summary budget must be at least 1 character, got {max_chars}")
        scores = self.score(text)
        if not scores:
            self.last_scores = []
            return ""
        vecs, _ = tfidf([terms(text[s.start:s.end]) for s in scores])
        base = np.array([s.score for s in scores])
        picked: list[int] = []
        used = 0
        candidates = set(range(len(scores)))
        while candidates:
            if picked:
                redundancy = (vecs @ vecs[picked].T).max(axis=1)
            else:
                redundancy = np.zeros(len(scores))
            mmr = self.mmr_lambda * base - (1 - self.mmr_lambda) * redundancy
            best = max(candidates, key=lambda i: (mmr[i], -i))
            candidates.discard(best)
            length = scores[best].end - scores[best].start + (1 if picked else 0)
            if used + length <= max_chars:
                picked.append(best)
                used += length
        self.last_scores = [SentenceScore(s.start, s.end, s.salience, s.bits_per_char,
                                          s.centrality, s.score, i in picked)
                            for i, s in enumerate(scores)]
        if not picked:  # even the best sentence is longer than the budget: cut it
            best = int(np.argmax(base))
            return fit_budget(text[scores[best].start:scores[best].end], max_chars)
        out = join_sentences([text[scores[i].start:scores[i].end] for i in sorted(picked)])
        return fit_budget(out, max_chars)


# --- an OpenAI-compatible chat endpoint --------------------------------------------------

def chat_url(url: str) -> str:
    """The `/v1/chat/completions` URL for a server address, a `/v1` base or the full path."""
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise SummarizerError(f"the chat endpoint must be an http:// or https:// URL, got "
                              f"{url!r} (e.g. http://127.0.0.1:11434 for Ollama)")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


class ChatSummarizer:
    """Summarize with a chat model behind an OpenAI-compatible endpoint (Ollama, vLLM, ...)."""

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 60.0):
        self.url = chat_url(url)
        if not model.strip():
            raise SummarizerError("name the chat model to use (e.g. 'qwen2.5:0.5b')")
        self.model, self.api_key, self.timeout = model.strip(), api_key, float(timeout)
        self.name = f"chat:{self.model}"
        self.method = f"chat model {self.model} at {self.url}"

    def _prompt(self, text: str, max_chars: int) -> list[dict]:
        chinese = len(_CJK_CHAR.findall(text)) > 0.2 * max(len(text), 1)
        lang = "Chinese" if chinese else "the language of the text"
        return [
            {"role": "system", "content": "You write faithful, concise summaries. Use only "
                                          "facts stated in the text."},
            {"role": "user", "content": f"Summarize the following text in {lang}, in at most "
                                        f"{max_chars} characters. Reply with the summary "
                                        f"only.\n\n{text}"},
        ]

    def complete(self, messages: list[dict]) -> str:
        """POST one chat completion and return the reply text, or raise SummarizerError."""
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0,
                           "stream": False}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace").strip()
            raise SummarizerError(f"the chat endpoint {self.url} answered HTTP {exc.code} "
                                  f"{exc.reason}: {detail or 'no details'}") from exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ConnectionRefusedError):
                why = "connection refused: is the server running (e.g. `ollama serve`)?"
            elif isinstance(reason, TimeoutError):
                why = f"no answer within {self.timeout:g} s"
            else:
                why = str(reason)
            raise SummarizerError(f"could not reach the chat endpoint {self.url}: {why}") \
                from exc
        except TimeoutError as exc:
            raise SummarizerError(f"the chat endpoint {self.url} gave no answer within "
                                  f"{self.timeout:g} s") from exc
        except OSError as exc:
            raise SummarizerError(f"could not reach the chat endpoint {self.url}: {exc}") \
                from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SummarizerError(f"the chat endpoint {self.url} did not answer with JSON "
                                  f"(got {raw[:80]!r}): is the URL an OpenAI-compatible "
                                  "server?") from exc
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise SummarizerError(f"the chat endpoint {self.url} answered JSON without "
                                  f"choices[0].message.content: {str(data)[:200]}") from exc
        if not isinstance(content, str):
            raise SummarizerError(f"the chat endpoint {self.url} returned non-text content")
        return content

    def summarize(self, text: str, max_chars: int) -> str:
        """The model's summary, cut to `max_chars` at a sentence end if it ran over."""
        if max_chars < 1:
            raise ValueError(f"the summary budget must be at least 1 character, got {max_chars}")
        return fit_budget(self.complete(self._prompt(text, max_chars)), max_chars)


# --- the tree ----------------------------------------------------------------------------

@dataclass
class SummaryNode:
    """A node of the summary tree: level 0 holds source chunks, higher levels summaries."""

    level: int
    text: str
    start: int  # the source characters this node covers
    end: int
    children: list[SummaryNode] = field(default_factory=list)

    @property
    def span(self) -> tuple[int, int]:
        return (self.start, self.end)

    def walk(self) -> Iterator[SummaryNode]:
        """This node and every descendant, depth first."""
        yield self
        for c in self.children:
            yield from c.walk()

    def to_dict(self) -> dict:
        return {"level": self.level, "start": self.start, "end": self.end, "text": self.text,
                "children": [c.to_dict() for c in self.children]}


def summary_calls(n_chunks: int, fan_in: int) -> int:
    """How many summaries a tree over `n_chunks` chunks takes (for progress bars)."""
    total, n = n_chunks, n_chunks
    while n > 1:
        groups = math.ceil(n / fan_in)
        total += groups - (1 if n % fan_in == 1 else 0)  # a lone last child is passed up
        n = groups
    return total


def summarize_tree(text: str, summarizer: Summarizer, *, budget: int, chunk_size: int,
                   overlap: int = 0, fan_in: int = 4, tokenizer: Encoder | None = None,
                   unit: Unit = "chars",
                   on_node: Callable[[SummaryNode, int, int], None] | None = None,
                   stop: threading.Event | None = None) -> SummaryNode:
    """Map-reduce summary tree whose root text has at most `budget` characters."""
    if budget < 1:
        raise ValueError(f"the summary budget must be at least 1 character, got {budget}")
    if fan_in < 2:
        raise ValueError(f"each summary must combine at least 2 children, got fan_in={fan_in}")
    text_stripped = text.strip()
    if not text_stripped:
        raise ValueError("the text is empty: nothing to summarize")
    chunks = split_text(text, chunk_size, overlap, tokenizer=tokenizer, unit=unit)
    leaves = [SummaryNode(0, c.text, c.start, c.end) for c in chunks]
    total = summary_calls(len(leaves), fan_in)
    done = 0

    def summarize(children: list[SummaryNode], level: int) -> SummaryNode:
        nonlocal done
        if stop is not None and stop.is_set():
            raise SummarizerError("summarization stopped by request")
        joined = join_sentences([c.text for c in children])
        node = SummaryNode(level, fit_budget(summarizer.summarize(joined, budget), budget),
                           children[0].start, children[-1].end, list(children))
        done += 1
        if on_node is not None:
            on_node(node, done, total)
        return node

    level_nodes = [summarize([leaf], 1) for leaf in leaves]
    while len(level_nodes) > 1:
        groups = [level_nodes[i:i + fan_in] for i in range(0, len(level_nodes), fan_in)]
        level_nodes = [summarize(g, max(c.level for c in g) + 1) if len(g) > 1 else g[0]
                       for g in groups]
    return level_nodes[0]
