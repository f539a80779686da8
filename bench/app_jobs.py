"""A job in the app, with a real browser attached, against the same job in plain Python.

Starts `streamlit run` on 127.0.0.1 (its own LMCORE_HOME) and drives Debian's Chromium with
Playwright. Two jobs, each measured four ways, interleaved round by round (medians; under each
table, the ratios of each round's own pair too, which the machine's drift between rounds does
not skew):

  (a) started from its page, with that page open in Chromium (the live chart redrawing);
  (b) started from its page, then the browser moved to another page of the app (same session,
      by the sidebar link) until the job ended;
  (c) the same job function in plain Python: `run_here(fn)` in a fresh process, no server;
  (d) the same job function submitted to a `JobRegistry` from plain Python (a worker process,
      no server, no browser): the engine's own cost.

Jobs: the Transformer page's default training (tiny preset: 2 layers x 64, context 64, char,
batch 16; tokens/s = steps x batch x context / the trainer's elapsed time, read from the run
store, so every arm is timed by the same clock) and the FlashAttention page's T sweep (in the
job's own process; the figure is the sum of the median forward and forward+backward times the
sweep measured over all cells, read from the page's CSV download: what the page reports, and
what watching would distort). (c) and (d) reuse the exact configuration the page recorded.

The Transformer page's time estimate ("≈ total") is checked against the measured training time.
Target: (a) at 0.9x or more of (c); the estimate within 25% of the measured time.

    .venv/bin/python bench/app_jobs.py            # 3 rounds, the page's default 200 steps
    .venv/bin/python bench/app_jobs.py --quick    # CI: 1 round, 40 steps, a short sweep
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
# How often the harness looks at the page or the run store while a job runs. Playwright's default
# polls on every animation frame, and `innerText` forces a layout each time: 60 layouts a
# second in Chromium, on the same 2 cores as the job, which no visitor's browser does.
POLL_MS = 500
ARMS = {"a": "(a) page open in Chromium", "b": "(b) browser on another page",
        "c": "(c) plain Python, run_here, no server", "d": "(d) plain Python, JobRegistry worker"}


# --- the server and the browser --------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(os.environ, LMCORE_HOME=str(home), PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not start in 120 s: " + log.read_text()[-2000:])


def wait_idle(page, timeout: float = 180_000) -> None:
    """The script run has finished: the app is rendered and no 'Running' status shows."""
    page.wait_for_selector("h1", timeout=timeout)
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidget"]')
                 || !document.querySelector('[data-testid="stStatusWidget"]').innerText
                      .includes('Running')""", timeout=timeout)
    page.wait_for_timeout(300)


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def go_elsewhere(page) -> None:
    """Move to another page of the app by the sidebar link (the same session goes on)."""
    link = page.locator('[data-testid="stSidebar"] a').filter(has_text="Corpus").first
    for attempt in range(3):  # a click that lands while a rerun redraws the sidebar is lost
        link.click()
        try:
            page.wait_for_url("**/Corpus_and_tokenizers", timeout=15_000)
            break
        except Exception:
            if attempt == 2:
                raise
    wait_idle(page)


def wait_started(page, done_text: str, timeout: float = 300_000) -> None:
    """The click's rerun has submitted the job: the sidebar lists it as running (or it is
    already done). Leaving before that would abort the rerun, and no job would start."""
    page.wait_for_function(
        "() => { const s = document.querySelector('[data-testid=\"stSidebar\"]');"
        " return (s && s.innerText.includes('Running jobs'))"
        f" || document.body.innerText.includes({json.dumps(done_text)}); }}", timeout=timeout,
        polling=POLL_MS)


def wait_text(page, text: str, timeout: float) -> None:
    page.wait_for_function(f"() => document.body.innerText.includes({json.dumps(text)})",
                           timeout=timeout, polling=POLL_MS)


# --- job 1: the Transformer page's training --------------------------------------------------

def _runs(home: Path) -> list:
    os.environ["LMCORE_HOME"] = str(home)
    from lmcore.runs.store import RunStore

    return RunStore().list()


def _tokens_per_s(run) -> float:
    cfg = run.config
    tokens = run.final["steps"] * cfg["train"]["batch_size"] * (cfg["train"].get("context")
                                                                 or cfg["model"]["context"])
    return tokens / run.final["elapsed_s"]


def _parse_seconds(text: str) -> float:
    m = re.match(r"([\d,.]+)\s*(ms|s)", text.strip())
    if not m:
        raise ValueError(f"cannot read a time from {text!r}")
    v = float(m.group(1).replace(",", ""))
    return v / 1000 if m.group(2) == "ms" else v


def train_in_browser(page, base: str, home: Path, steps: int, away: bool,
                     timeout: float) -> dict:
    """Press Train on the Transformer page; (b): then go to another page until it ends."""
    page.goto(f"{base}/Transformer")
    wait_idle(page)
    set_number(page, "Steps", steps)
    estimate = page.locator('[data-testid="stMetric"]').filter(has_text="≈ total")
    est_s = _parse_seconds(estimate.locator('[data-testid="stMetricValue"]').inner_text())
    before = {r.id for r in _runs(home)}
    t0 = time.perf_counter()
    page.get_by_role("button", name="Train").click()
    deadline = time.monotonic() + timeout / 1000
    if away:
        wait_started(page, "The model is now")
        go_elsewhere(page)
    else:
        wait_text(page, "The model is now", timeout)
    while True:  # the run store says when the trainer finished (either arm)
        new = [r for r in _runs(home) if r.id not in before and r.status != "running"]
        if new:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the training job did not finish in time")
        time.sleep(POLL_MS / 1000)
    wall = time.perf_counter() - t0
    run = new[0]
    if run.status != "done":
        raise RuntimeError(f"training ended {run.status}: {run.error}")
    return dict(tokens_per_s=_tokens_per_s(run), train_s=run.final["elapsed_s"],
                wall_s=wall, estimate_s=est_s, run=run)


def _plain_training(home: str, config: dict, worker: bool) -> dict:
    """(c)/(d): the page's job function with the recorded configuration, no server."""
    os.environ["LMCORE_HOME"] = home
    from lmcore.app.jobs import JobRegistry, Slots, run_here, warm_up
    from lmcore.app.train_job import training_job
    from lmcore.data.builtin import pydoc_corpus
    from lmcore.runs.store import RunStore
    from lmcore.train.objectives import CausalLM
    from lmcore.train.trainer import TrainConfig

    model = {k: v for k, v in config["model"].items() if k != "vocab_size"}
    train = dict(config["train"], checkpoint_dir=None)
    fn = training_job(pydoc_corpus(), config["tokenizer"], model, TrainConfig(**train),
                      CausalLM())
    if worker:
        warm_up()
        job = JobRegistry(slots=Slots(1)).submit("bench", fn)
        job.wait()
    else:
        job = run_here(fn)
    if job.status != "done":
        raise RuntimeError(f"plain job ended {job.status}: {job.error}")
    run = RunStore().get(job.result.run_id)
    return dict(tokens_per_s=_tokens_per_s(run), train_s=run.final["elapsed_s"])


# --- job 2: the FlashAttention page's sweep --------------------------------------------------

SWEEP_DONE = "attention-sweep: done"


def _sweep_seconds(rows: list[dict]) -> float:
    return sum(float(r["fwd_ms"]) + float(r["fwdbwd_ms"]) for r in rows) / 1000


def sweep_in_browser(page, base: str, trange: tuple[int, int], repeats: int, away: bool,
                     timeout: float) -> dict:
    page.goto(f"{base}/FlashAttention")
    wait_idle(page)
    _sweep_tab(page)
    page.locator('[data-testid="stRadio"] label').filter(
        has_text="the job's own process").first.click()
    wait_idle(page)
    set_number(page, "Timing repeats", repeats)
    _set_range(page, trange)
    t0 = time.perf_counter()
    page.get_by_role("button", name="Run the sweep").click()
    if away:
        wait_started(page, SWEEP_DONE)
        go_elsewhere(page)
        sidebar = page.locator('[data-testid="stSidebar"]')
        deadline = time.monotonic() + timeout / 1000
        while "attention-sweep" in sidebar.inner_text():  # listed while it runs
            if time.monotonic() > deadline:
                raise RuntimeError("the sweep did not finish in time")
            page.wait_for_timeout(3000)  # the sidebar is redrawn only when the page reruns:
            go_elsewhere(page)  # the same link again (same session), every 3 s
        wall = time.perf_counter() - t0
        page.locator('[data-testid="stSidebar"] a').filter(has_text="FlashAttention") \
            .first.click()
        wait_idle(page)
        _sweep_tab(page)
    else:
        wait_text(page, SWEEP_DONE, timeout)
        wall = time.perf_counter() - t0
    wait_text(page, SWEEP_DONE, 60_000)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download results (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    return dict(sweep_s=_sweep_seconds(rows), wall_s=wall, cells=len(rows))


def _sweep_tab(page) -> None:
    tab = page.get_by_role("tab", name="Memory and time vs T")
    if tab.count():
        tab.first.click()
        page.wait_for_timeout(300)


def _set_range(page, trange: tuple[int, int]) -> None:
    """The T range slider: move each thumb with the keyboard to the wanted power of two
    (its hidden range inputs hold the index into 64, 128, ... 16384)."""
    powers = [2**i for i in range(6, 15)]
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Sequence lengths")
    slider.first.wait_for()
    thumbs = slider.first.locator('input[type="range"]')
    order = (0, 1) if powers.index(trange[0]) <= int(thumbs.nth(0).get_attribute("value")) \
        else (1, 0)  # move the end first when the start goes up (thumbs may not cross)
    for i in order:
        thumb, want = thumbs.nth(i), powers.index(trange[i])
        now = int(thumb.get_attribute("value"))
        thumb.focus()
        for _ in range(abs(want - now)):
            thumb.press("ArrowRight" if want > now else "ArrowLeft")
        wait_idle(page)


def _plain_sweep(trange: tuple[int, int], repeats: int, worker: bool) -> dict:
    from lmcore.app.attention_job import run_sweep
    from lmcore.app.jobs import JobRegistry, Slots, run_here, warm_up

    Ts = [2**i for i in range(6, 15) if trange[0] <= 2**i <= trange[1]]
    fn = functools.partial(run_sweep, Ts=Ts, impls=["naive", "sdpa", "tiled"],
                           limit_bytes=1024 * 2**20, fresh_process=False, repeats=repeats)
    t0 = time.perf_counter()
    if worker:
        warm_up()
        t0 = time.perf_counter()
        job = JobRegistry(slots=Slots(1)).submit("bench", fn)
        job.wait()
    else:
        job = run_here(fn)
    wall = time.perf_counter() - t0
    if job.status != "done":
        raise RuntimeError(f"plain sweep ended {job.status}: {job.error}")
    snap = job.snapshot()
    rows = [dict(fwd_ms=f, fwdbwd_ms=b) for impl, cols in snap.items() if impl != "_stopped"
            for f, b in zip(cols["fwd_ms"], cols["fwdbwd_ms"], strict=True)]
    return dict(sweep_s=_sweep_seconds(rows), wall_s=wall, cells=len(rows))


def in_fresh_process(name: str, **kwargs) -> dict:
    """Run one plain arm in a new Python process (no server, no browser, nothing warm)."""
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); "
            f"sys.argv = ['app_jobs']; import bench.app_jobs as b; "
            f"print('RESULT', json.dumps(b.{name}(**json.loads(sys.stdin.read()))))")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(kwargs),
                         capture_output=True, text=True, cwd=ROOT, timeout=1800,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if out.returncode != 0 or not line:
        raise RuntimeError(f"{name} failed: {out.stderr[-2000:]}")
    return json.loads(line[-1][len("RESULT "):])


# --- the tables ------------------------------------------------------------------------------

def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def paired(arm: list[dict], base: list[dict], key: str, faster: str = "higher") -> str:
    """Round-by-round ratios of `arm` against `base` (same round, so drift in the machine's
    speed between rounds cancels), and their median: a noisy machine's fairer read."""
    r = [(a[key] / b[key]) if faster == "higher" else (b[key] / a[key])
         for a, b in zip(arm, base, strict=True)]
    return " ".join(f"{x:.3f}" for x in r) + f" (median {statistics.median(r):.3f})"


def _med(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 round, 40 steps, short sweep")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="training steps (page: 200)")
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    steps = args.steps or (40 if args.quick else 200)
    trange, repeats = ((64, 256), 1) if args.quick else ((256, 2048), 3)
    timeout = 900_000

    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="lmcore-bench-"))
    home = tmp / "home"
    say(f"starting the server (log: {tmp / 'streamlit.log'})")
    proc, base = start_server(home, tmp / "streamlit.log")
    train: dict[str, list[dict]] = {k: [] for k in ARMS}
    sweep: dict[str, list[dict]] = {k: [] for k in ARMS}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      accept_downloads=True)
            page = ctx.new_page()
            page.goto(base)
            wait_idle(page)
            # warm-up: the first job of a server starts its forkserver; not measured
            say("warm-up training")
            train_in_browser(page, base, home, 5, away=False, timeout=timeout)
            for r in range(rounds):
                for arm in ("a", "b"):
                    say(f"round {r + 1}: training {ARMS[arm]}")
                    train[arm].append(train_in_browser(page, base, home, steps,
                                                       away=arm == "b", timeout=timeout))
                    say(f"  {train[arm][-1]['tokens_per_s']:,.0f} tokens/s, estimate "
                        f"{train[arm][-1]['estimate_s']:.1f} s, took {train[arm][-1]['train_s']:.1f} s")
                config = train["a"][-1]["run"].config
                for arm, worker in (("c", False), ("d", True)):
                    say(f"round {r + 1}: training {ARMS[arm]}")
                    train[arm].append(in_fresh_process(
                        "_plain_training", home=str(tmp / f"plain-{arm}-{r}"), config=config,
                        worker=worker))
                    say(f"  {train[arm][-1]['tokens_per_s']:,.0f} tokens/s")
                for arm in ("a", "b"):
                    say(f"round {r + 1}: sweep {ARMS[arm]}")
                    sweep[arm].append(sweep_in_browser(page, base, trange, repeats,
                                                       away=arm == "b", timeout=timeout))
                for arm, worker in (("c", False), ("d", True)):
                    say(f"round {r + 1}: sweep {ARMS[arm]}")
                    sweep[arm].append(in_fresh_process("_plain_sweep", trange=list(trange),
                                                       repeats=repeats, worker=worker))
                say(f"round {r + 1}/{rounds} done")
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

    load = os.getloadavg()
    print(f"\nMachine: {os.cpu_count()} CPUs, shared (load average {load[0]:.1f}, "
          f"{load[1]:.1f}, {load[2]:.1f} at the end). {rounds} round(s), medians, "
          f"arms interleaved in each round.\n")
    c_tps = _med([x["tokens_per_s"] for x in train["c"]])
    print(f"Transformer page's default training ({steps} steps, tiny preset, char):\n")
    print("| arm | tokens/s | ratio vs (c) | training s | wall s (click to done) |")
    print("|---|---:|---:|---:|---:|")
    for arm, label in ARMS.items():
        tps = _med([x["tokens_per_s"] for x in train[arm]])
        wall = (f"{_med([x['wall_s'] for x in train[arm]]):.1f}" if "wall_s" in train[arm][0]
                else "-")
        print(f"| {label} | {tps:,.0f} | {tps / c_tps:.3f}x | "
              f"{_med([x['train_s'] for x in train[arm]]):.2f} | {wall} |")
    print(f"\nPer round against (c): (a) {paired(train['a'], train['c'], 'tokens_per_s')}; "
          f"(b) {paired(train['b'], train['c'], 'tokens_per_s')}.")
    c_sw = _med([x["sweep_s"] for x in sweep["c"]])
    print(f"\nFlashAttention page's T sweep (T {trange[0]}..{trange[1]}, naive/sdpa/tiled, "
          f"{repeats} timing repeat(s), in the job's process):\n")
    print("| arm | measured kernel s (sum over cells) | speed vs (c) | cells | wall s |")
    print("|---|---:|---:|---:|---:|")
    for arm, label in ARMS.items():
        s = _med([x["sweep_s"] for x in sweep[arm]])
        print(f"| {label} | {s:.3f} | {c_sw / s:.3f}x | {sweep[arm][0]['cells']} | "
              f"{_med([x['wall_s'] for x in sweep[arm]]):.1f} |")
    print(f"\nPer round against (c): (a) {paired(sweep['a'], sweep['c'], 'sweep_s', 'lower')}; "
          f"(b) {paired(sweep['b'], sweep['c'], 'sweep_s', 'lower')}.")
    est = _med([x["estimate_s"] for x in train["a"]])
    meas = _med([x["train_s"] for x in train["a"]])
    a_ratio = _med([x["tokens_per_s"] for x in train["a"]]) / c_tps
    sw_ratio = c_sw / _med([x["sweep_s"] for x in sweep["a"]])
    est_err = est / meas - 1
    note = " (--quick: too few steps to judge)" if args.quick else ""
    print("\n| target | measured | met |")
    print("|---|---:|---|")
    print(f"| training, page open: (a) >= 0.9x (c) | {a_ratio:.3f}x | "
          f"{'yes' if a_ratio >= 0.9 else 'no'}{note} |")
    print(f"| sweep, page open: (a) >= 0.9x (c) | {sw_ratio:.3f}x | "
          f"{'yes' if sw_ratio >= 0.9 else 'no'}{note} |")
    print(f"| page's estimate within 25% of the measured training time | {est:.1f} s vs "
          f"{meas:.1f} s ({est_err:+.0%}) | {'yes' if abs(est_err) <= 0.25 else 'no'}{note} |")


if __name__ == "__main__":
    import faulthandler

    faulthandler.register(__import__("signal").SIGUSR1)  # kill -USR1: where is it stuck
    main()
