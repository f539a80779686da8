"""`lmcore train`, `lmcore runs`, `lmcore generate` end to end on a tiny model."""

from __future__ import annotations

import json

import pytest
import torch

from lmcore.cli import main
from lmcore.runs.store import RunStore

TINY = ["--layers", "1", "--heads", "2", "--width", "16", "--context", "16",
        "--batch-size", "4", "--eval-every", "2", "--quiet"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: on a busy shared machine two OpenMP threads stall for whole slices."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def text_file(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("the cat sat on the mat.\nthe dog sat on the log.\n" * 60, encoding="utf-8")
    return f


def _train(capsys, *args):
    code = main(["train", *TINY, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_prints_final_losses_saves_model_and_records_run(capsys, text_file, tmp_path):
    out_dir = tmp_path / "model"
    code, out, err = _train(capsys, "--corpus", str(text_file), "--steps", "4",
                            "--out", str(out_dir))
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    assert last.startswith("final train loss ") and "validation loss" in last
    assert (out_dir / "model.safetensors").exists() and (out_dir / "tokenizer.json").exists()
    runs = RunStore().list()
    assert len(runs) == 1 and runs[0].status == "done"
    assert runs[0].checkpoint == str(out_dir) and runs[0].final["steps"] == 4
    valid = float(last.split("validation loss ")[1].split()[0])
    assert runs[0].final["valid_loss"] == pytest.approx(valid, abs=1e-4)
    rid = runs[0].id

    assert main(["runs", "list"]) == 0
    assert rid in capsys.readouterr().out
    assert main(["runs", "show", rid[:17]]) == 0
    shown = capsys.readouterr().out
    assert "[done]" in shown and "train: 4 points" in shown
    assert main(["runs", "export", rid]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["metrics"]["train"]["step"] == [1, 2, 3, 4]
    assert main(["runs", "export", rid, "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("run_id,series,step,")

    assert main(["generate", "--model", str(out_dir), "--prompt", "the ", "-n", "12",
                 "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("the ") and len(first.strip()) > 4
    main(["generate", "--model", str(out_dir), "--prompt", "the ", "-n", "12", "--seed", "3"])
    assert capsys.readouterr().out == first  # seeded

    assert main(["generate", "--run", rid, "--prompt", "the ", "-n", "12", "--seed", "3"]) == 0
    assert capsys.readouterr().out == first  # the run's saved model, reloaded
    assert main(["runs", "compare", rid]) == 0
    table = capsys.readouterr().out
    assert table.startswith(f"| field | {rid} |") and "| valid_loss |" in table

    assert main(["runs", "delete", rid]) == 0
    assert RunStore().list() == []


def test_resume_continues_from_saved_state(capsys, text_file, tmp_path):
    out_dir = tmp_path / "m"
    assert _train(capsys, "--corpus", str(text_file), "--steps", "2", "--out",
                  str(out_dir))[0] == 0
    code, out, err = _train(capsys, "--corpus", str(text_file), "--steps", "4", "--out",
                            str(out_dir), "--resume")
    assert code == 0, err
    assert "4 steps" in out
    run = RunStore().list()[0]
    assert RunStore().metrics(run.id)["train"]["step"] == [3, 4]


@pytest.mark.parametrize("args,needle", [
    (["--corpus", "/nonexistent.txt"], "no such file"),
    (["--corpus", "builtin", "--heads", "3"], "multiple of n_head"),
    (["--corpus", "builtin", "--steps", "0"], "steps must be at least 1"),
])
def test_bad_input_is_one_line_exit_2(capsys, args, needle):
    code = main(["train", *args, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err


def test_generate_without_model_folder_is_a_clear_error(capsys, tmp_path):
    assert main(["generate", "--model", str(tmp_path / "none"), "-n", "3"]) == 2
    assert "no checkpoint folder" in capsys.readouterr().err


def test_limit_stops_before_training_and_the_run_is_not_left_running(capsys, text_file,
                                                                      monkeypatch):
    monkeypatch.setenv("LMCORE_MAX_STEPS", "3")
    code, _, err = _train(capsys, "--corpus", str(text_file), "--steps", "5")
    assert code == 2 and "max_steps" in err and "LMCORE_MAX_STEPS" in err
    runs = RunStore().list()
    assert [r.status for r in runs] == ["failed"] and "max_steps" in runs[0].error
