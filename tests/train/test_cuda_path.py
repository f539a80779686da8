"""The GPU path: `--device cuda` trains and generates on a GPU; without one, a clear refusal."""

from __future__ import annotations

import pytest
import torch

from lmcore.cli import main

HAS_CUDA = torch.cuda.is_available()
TINY = ["--corpus", "builtin", "--layers", "1", "--heads", "2", "--width", "16",
        "--context", "16", "--batch-size", "4", "--steps", "3", "--eval-every", "0", "--quiet"]


@pytest.mark.skipif(HAS_CUDA, reason="checks the refusal on a machine without a GPU")
def test_cuda_without_a_gpu_is_one_line_and_records_nothing(capsys, tmp_path):
    from lmcore.runs.store import RunStore

    assert main(["train", *TINY, "--device", "cuda", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "lmcore: error: --device cuda: this machine has no usable GPU (torch sees none)"
    assert RunStore().list() == [] and not (tmp_path / "m").exists()
    assert main(["generate", "--model", str(tmp_path), "--device", "cuda"]) == 2
    assert "no usable GPU" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (none on this machine)")
def test_train_and_generate_on_cuda(capsys, tmp_path):
    out = tmp_path / "m"
    assert main(["train", *TINY, "--device", "cuda", "--out", str(out)]) == 0
    assert main(["generate", "--model", str(out), "--device", "cuda", "-n", "5",
                 "--probs"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) >= 5
