"""`lmcore train`, `lmcore runs`, `lmcore generate` end to end on a tiny model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from safetensors import safe_open

from lmcore.cli import main
from lmcore.models.checkpoint import load_model
from lmcore.runs.store import RunStore

TINY = ["--layers", "1", "--heads", "2", "--width", "16", "--context", "16",
        "--batch-size", "4", "--eval-every", "2", "--quiet"]


# One intra-op thread: on a busy shared machine two OpenMP threads stall for whole slices.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    (["--corpus", "builtin", "--steps", "0"], "--steps: must be at least 1, got 0"),
])
def test_bad_input_is_one_line_exit_2(capsys, args, needle):
    code = main(["train", *args, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err


def test_generate_without_model_folder_is_a_clear_error(capsys, tmp_path):
    assert main(["generate", "--model", str(tmp_path / "none"), "-n", "3"]) == 2
    assert "no checkpoint folder" in capsys.readouterr().err


def test_limit_stops_before_training_and_records_nothing(capsys, text_file, monkeypatch):
    """A refused command writes nothing: no 'failed' run in the store (issue 13)."""
    monkeypatch.setenv("LMCORE_MAX_STEPS", "3")
    code, _, err = _train(capsys, "--corpus", str(text_file), "--steps", "5")
    assert code == 2 and "max_steps" in err and "LMCORE_MAX_STEPS" in err
    assert RunStore().list() == []


# --- kill and resume, Ctrl-C ------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = "import sys; from lmcore.cli import main; sys.exit(main())"


def _cli(*args: str, **kw) -> subprocess.Popen:
    """`lmcore ARGS` in a fresh process (one torch thread, this test's LMCORE_HOME)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", LAUNCH, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _events(path: Path, kind: str = "step") -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [d for d in map(json.loads, lines) if d["event"] == kind]


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"process ended ({proc.returncode}) first: {proc.communicate()[1]}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_sigkill_then_resume_gives_the_same_following_losses(text_file, tmp_path):
    common = ["train", *TINY, "--corpus", str(text_file), "--steps", "600", "--eval-every",
              "0", "--checkpoint-every", "5"]
    ref = _cli(*common, "--out", str(tmp_path / "ref"), "--log-json", str(tmp_path / "r.jsonl"))
    killed_dir = tmp_path / "killed"
    victim = _cli(*common, "--out", str(killed_dir), "--log-json", str(tmp_path / "k.jsonl"))
    state = killed_dir / "train_state.safetensors"
    _wait_for(state.exists, victim)  # renamed into place: a complete checkpoint
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    with safe_open(str(state), framework="pt") as f:
        at = json.loads(f.metadata()["lmcore"])["step"]
    assert 5 <= at < 600 and at % 5 == 0
    killed = [r for r in RunStore().list() if r.config["out"] == str(killed_dir)]
    assert killed[0].display_status == "failed (process died)"  # not left 'running'

    resumed = _cli(*common, "--out", str(killed_dir), "--resume", "--log-json",
                   str(tmp_path / "c.jsonl"))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resuming from step {at}" in err
    ref_out, ref_err = ref.communicate(timeout=300)
    assert ref.returncode == 0, ref_err
    want = {d["step"]: d["loss"] for d in _events(tmp_path / "r.jsonl")}
    got = {d["step"]: d["loss"] for d in _events(tmp_path / "c.jsonl")}
    assert sorted(got) == list(range(at + 1, 601))
    assert got == {s: want[s] for s in got}  # bit for bit, not approximately
    final = _events(tmp_path / "c.jsonl", "done")[0]
    assert final["valid_loss"] == _events(tmp_path / "r.jsonl", "done")[0]["valid_loss"]


def test_resume_without_saved_state_is_refused_before_a_run_is_recorded(capsys, text_file,
                                                                          tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _train(capsys, "--corpus", str(text_file), "--steps", "4", "--out",
                          str(empty), "--resume")
    assert code == 2 and "no training state" in err and "--checkpoint-every" in err
    code, _, err = _train(capsys, "--corpus", str(text_file), "--steps", "4", "--resume")
    assert code == 2 and "no recorded run left a training state" in err
    assert RunStore().list() == []  # no false 'failed' record
    # a state that does not fit (another width) is refused before recording, too
    assert _train(capsys, "--corpus", str(text_file), "--steps", "2", "--out",
                  str(tmp_path / "m"))[0] == 0
    code, _, err = _train(capsys, "--corpus", str(text_file), "--steps", "4", "--out",
                          str(tmp_path / "m"), "--resume", "--width", "32")
    assert code == 2 and "same model config" in err
    assert len(RunStore().list()) == 1


def test_resume_without_out_continues_the_newest_run(capsys, text_file):
    assert _train(capsys, "--corpus", str(text_file), "--steps", "2")[0] == 0
    first = RunStore().list()[0]
    code, out, err = _train(capsys, "--corpus", str(text_file), "--steps", "4", "--resume")
    assert code == 0, err
    run = RunStore().list()[0]
    assert run.id != first.id and run.checkpoint == first.checkpoint
    assert RunStore().metrics(run.id)["train"]["step"] == [3, 4]


def test_first_ctrl_c_stops_cleanly_with_numbers_and_a_saved_model(text_file, tmp_path):
    log = tmp_path / "log.jsonl"
    proc = _cli("train", *TINY, "--corpus", str(text_file), "--steps", "20000",
                "--eval-every", "0", "--out", str(tmp_path / "m"), "--log-json", str(log))
    _wait_for(lambda: len(_events(log)) >= 3, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopping after this step" in err and "Traceback" not in err
    assert "final train loss" in out and "continue with --resume" in out
    done = _events(log, "done")[0]
    assert done["status"] == "stopped" and 3 <= done["step"] < 20000
    run = RunStore().list()[0]
    assert run.status == "stopped" and run.error is None
    assert run.final["steps"] == done["step"] and run.final["valid_loss"] == done["valid_loss"]
    assert run.checkpoint == str(tmp_path / "m")
    loaded = load_model(run.checkpoint)
    assert loaded.extra["steps"] == done["step"] and loaded.extra["status"] == "stopped"


def test_second_ctrl_c_aborts_and_records_the_run_stopped(capsys, text_file, tmp_path,
                                                          monkeypatch):
    """Two SIGINTs during step 3: the second aborts at once (no final evaluation)."""
    import lmcore.cli.train as cli_train

    real = cli_train.JsonLog.__call__

    def interrupt_twice(self, e):
        real(self, e)
        if e.__class__.__name__ == "Step" and e.step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the handler sets the stop event
            os.kill(os.getpid(), signal.SIGINT)  # ... and now raises KeyboardInterrupt

    monkeypatch.setattr(cli_train.JsonLog, "__call__", interrupt_twice)
    log = tmp_path / "log.jsonl"
    before = signal.getsignal(signal.SIGINT)
    code, _, err = _train(capsys, "--corpus", str(text_file), "--steps", "50", "--out",
                          str(tmp_path / "m"), "--log-json", str(log))
    assert code == 130 and "interrupted" in err
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back
    assert [d["step"] for d in _events(log)] == [1, 2, 3] and not _events(log, "done")
    run = RunStore().list()[0]
    assert run.status == "stopped" and "aborted by a second Ctrl-C" in run.error
    assert run.final == {"steps": 3}
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_stop_on_interrupt_sets_then_aborts():
    from lmcore.cli.train import StopOnInterrupt

    stop, said = threading.Event(), []
    handler = StopOnInterrupt(stop, said.append)
    handler(signal.SIGINT, None)
    assert stop.is_set() and "Ctrl-C again to abort" in said[0]
    with pytest.raises(KeyboardInterrupt):
        handler(signal.SIGINT, None)


def test_export_all_honours_the_format_and_delete_removes_the_saved_model(capsys, text_file,
                                                                           tmp_path):
    assert _train(capsys, "--corpus", str(text_file), "--steps", "2")[0] == 0
    assert _train(capsys, "--corpus", str(text_file), "--steps", "2", "--out",
                  str(tmp_path / "mine"))[0] == 0
    runs = RunStore().list()
    assert main(["runs", "export", "--all", "--format", "json"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in every] == [r.id for r in runs]
    assert every[0]["metrics"]["train"]["step"] == [1, 2]
    assert main(["runs", "export", "--all", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("id,name,status,")
    mine, managed = runs  # newest first
    assert Path(managed.checkpoint).parent.name == "models"
    assert main(["runs", "delete", managed.id]) == 0
    assert "and its model" in capsys.readouterr().out
    assert not Path(managed.checkpoint).exists()
    assert main(["runs", "delete", mine.id]) == 0  # --out folders are never touched
    assert Path(mine.checkpoint).is_dir() and RunStore().list() == []


def test_delete_keep_model(capsys, text_file):
    assert _train(capsys, "--corpus", str(text_file), "--steps", "2")[0] == 0
    run = RunStore().list()[0]
    assert main(["runs", "delete", run.id, "--keep-model"]) == 0
    assert Path(run.checkpoint, "model.safetensors").exists()


def test_a_running_run_is_not_deleted(capsys):
    rid = RunStore().create("still training (this process)", {})
    assert main(["runs", "delete", rid]) == 2
    assert "still running" in capsys.readouterr().err
    assert RunStore().get(rid).status == "running"
