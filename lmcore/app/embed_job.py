"""The Embeddings page's jobs: word2vec training, and a small Transformer whose token table
and hidden states the page inspects.

Module-level bodies taking `ctx` first and plain arguments only (the job contract); the
Transformer comes back as a safetensors checkpoint folder in a private temp directory.
"""

from __future__ import annotations

import tempfile
from typing import Any

from lmcore.data.corpus import Corpus
from lmcore.embed.vectors import WordVectors
from lmcore.embed.word2vec import Word2VecConfig, train_word2vec


def run_word2vec(ctx: Any, *, text: str, config: Word2VecConfig) -> WordVectors:
    """Skip-gram with negative sampling on `text`; the loss goes to the live chart."""
    return train_word2vec(text, config, progress=ctx.progress, stop=ctx.stop,
                          on_loss=lambda step, loss: ctx.log("loss", step=step, loss=loss))


def run_embedding_transformer(ctx: Any, *, corpus: Corpus, kind: str = "word",
                              vocab_size: int | None = 2000, steps: int = 300,
                              seed: int = 0) -> str:
    """Train a small causal Transformer on the corpus (tokenizer `kind`); return the folder
    of its checkpoint (safetensors + tokenizer JSON): the job's private work folder, which
    lives as long as the job does (the page loads the model from it once)."""
    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.models.checkpoint import save_model
    from lmcore.models.transformer import Transformer, TransformerConfig
    from lmcore.train.data import TokenData
    from lmcore.train.objectives import make_objective
    from lmcore.train.trainer import Step, TrainConfig, seeded, train

    ctx.progress(0.0, f"training the {kind} tokenizer")
    tok = train_tokenizer(kind, corpus.split().train,
                          vocab_size=vocab_size if kind not in ("char", "byte") else None)
    data = TokenData.from_corpus(corpus, tok)
    cfg = TransformerConfig(vocab_size=tok.vocab_size, context=64, n_layer=2, n_head=4,
                            n_embd=64)
    net = seeded(lambda: Transformer(cfg), seed)

    def feed(e: Any) -> None:
        if isinstance(e, Step):
            ctx.log("transformer", step=e.step, loss=e.loss)
            ctx.progress(e.step / e.steps, f"step {e.step}/{e.steps} · loss {e.loss:.3f}")

    result = train(net, make_objective("causal"), data,
                   TrainConfig(steps=steps, batch_size=16, eval_every=0, memory_every=0,
                               seed=seed), callback=feed, stop=ctx.stop)
    if result.status == "failed":
        raise ValueError(f"training failed: {result.error}")
    folder = getattr(ctx, "workdir", None) or tempfile.mkdtemp(prefix="lmcore-embed-")
    save_model(folder, net, tok, extra={"steps": result.steps, "corpus": corpus.name,
                                        "corpus_fingerprint": corpus.fingerprint})
    return folder
