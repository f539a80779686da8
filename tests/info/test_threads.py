"""Coding runs its own thread on one torch thread; other threads and the default keep theirs."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from lmcore.data.tokenizers import train_tokenizer
from lmcore.info.coding import compress, decompress
from lmcore.info.threads import default_threads, one_torch_thread
from lmcore.models.lm import LanguageModel


class Probe(LanguageModel):
    """A uniform model that records, while it is asked, the thread counts torch uses."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.vocab_size
        self.coder: set[int] = set()
        self.started: list[int] = []

    def next_logprobs(self, context):
        self.coder.add(torch.get_num_threads())
        if not self.started:  # a thread whose first torch call happens during the coding
            t = threading.Thread(target=lambda: self.started.append(torch.get_num_threads()))
            t.start()
            t.join()
        return np.full(self.vocab_size, -np.log(self.vocab_size))

    def fingerprint(self) -> str:
        return "probe"


def test_coding_thread_alone_runs_on_one_thread(two_threads):
    tok = train_tokenizer("char", "hello world")
    model = Probe(tok)
    data = compress(model, "hello")
    assert model.coder == {1}  # the coding thread: one thread while it codes
    assert model.started == [2]  # a thread started meanwhile gets the process default
    assert torch.get_num_threads() == 2  # the coding thread has its count back
    assert default_threads() == 2
    assert decompress(model, data) == "hello"


def test_existing_threads_and_the_default_survive_concurrent_coders(two_threads):
    ready, release = threading.Event(), threading.Event()
    seen = {}

    def bystander():  # a training thread already running
        torch.ones(1).add_(1)
        ready.set()
        release.wait(30)
        seen["bystander"] = torch.get_num_threads()

    def coder(i):
        with one_torch_thread():
            seen[i] = torch.get_num_threads()

    b = threading.Thread(target=bystander)
    b.start()
    ready.wait(30)
    coders = [threading.Thread(target=coder, args=(i,)) for i in range(6)]
    for t in coders:
        t.start()
    for t in coders:
        t.join()
    release.set()
    b.join()
    assert [seen[i] for i in range(6)] == [1] * 6
    assert seen["bystander"] == 2
    assert default_threads() == 2 and torch.get_num_threads() == 2


def test_an_error_inside_restores_the_count(two_threads):
    with pytest.raises(RuntimeError, match="boom"), one_torch_thread():
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2 and default_threads() == 2
