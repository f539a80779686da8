"""Memory measurements: saved-for-backward bytes are exact; the RSS sampler sees allocations."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from lmcore.train.memory import RSSSampler, SavedTensors, cuda_peak_bytes, rss_bytes


def test_saved_bytes_exact_for_exp():
    x = torch.randn(4, 1000, requires_grad=True)
    with SavedTensors() as saved:
        y = x.exp()  # exp saves its result: 4*1000 float32
    assert saved.bytes == 4 * 1000 * 4
    y.sum().backward()  # the graph still works with the hooks gone
    torch.testing.assert_close(x.grad, x.exp().detach())


def test_saved_bytes_dedupe_by_storage():
    x = torch.randn(64, 64, requires_grad=True)
    with SavedTensors() as saved:
        a = x.exp()  # saves a (16 KiB)
        b = a * a  # saves a twice: same storage
        c = a[:8].sin()  # saves a view of a: same storage
        (b.sum() + c.sum()).backward()
    assert saved.bytes == 64 * 64 * 4
    assert saved.tensors >= 4  # seen several times, counted once


def test_parameters_counted_apart_from_activations():
    lin = torch.nn.Linear(32, 16, bias=False)
    x = torch.randn(8, 32, requires_grad=True)
    with SavedTensors().watch(lin) as saved:
        lin(x).sum().backward()
    assert saved.bytes == 8 * 32 * 4  # the input activation
    assert saved.param_bytes == 16 * 32 * 4  # the weight, saved for dL/dx


def test_no_grad_saves_nothing():
    x = torch.randn(100, 100, requires_grad=True)
    with torch.no_grad(), SavedTensors() as saved:
        x.exp().tanh()
    assert saved.bytes == 0 and saved.tensors == 0


def test_rss_sampler_samples_at_about_20hz_and_sees_a_big_allocation():
    with RSSSampler(interval=0.05) as sampler:
        base = rss_bytes()
        time.sleep(0.1)
        big = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB touched
        time.sleep(0.25)
        assert sampler.running
        del big
    assert not sampler.running
    times, rss = sampler.samples()
    assert len(times) == len(rss) >= 5
    assert times == sorted(times)
    assert sampler.peak - base > 48 * 1024 * 1024


def test_rss_sampler_rejects_bad_interval():
    with pytest.raises(ValueError, match="interval"):
        RSSSampler(interval=0)


def test_cuda_peak_is_none_without_gpu():
    if torch.cuda.is_available():
        assert cuda_peak_bytes() >= 0
    else:
        assert cuda_peak_bytes() is None
