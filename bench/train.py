"""Training throughput: lmcore's Transformer + trainer against a plain nanoGPT-layout GPT.

Side by side in one run, same shape (4 layers, 4 heads, width 128, context 256, batch 16,
character-level on the built-in corpus, AdamW, grad clip 1.0), interleaved rounds, medians of
per-step tokens/s. A second table measures what the live-chart plumbing costs: lmcore's trainer
run plainly versus the way the page runs it, inside the job registry with the page's callback
chain (the SQLite run Recorder, then the JobFeed logging every step into the job's series) and
a poller thread snapshotting the series and building the plotly figure every 0.5 s (what the
page's fragment does). The last lines say whether the targets are met: lmcore at least 1.0x
the reference, plumbing under 5%.

    .venv/bin/python bench/train.py           # 8 rounds x 8 measured steps per setting
    .venv/bin/python bench/train.py --quick   # CI: a few steps at context 64, batch 8
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmcore.data.builtin import pydoc_corpus  # noqa: E402
from lmcore.data.tokenizers import train_tokenizer  # noqa: E402
from lmcore.models.transformer import Transformer, TransformerConfig  # noqa: E402
from lmcore.train.data import TokenData  # noqa: E402
from lmcore.train.objectives import CausalLM  # noqa: E402
from lmcore.train.trainer import Step, TrainConfig, train  # noqa: E402


def in_thread(fn, *args, **kwargs):
    """Run `fn` in a fresh thread, as every job runs in the app, and return its result.

    All four settings run this way. On this shared machine a loop in a long-lived thread
    (or the main thread) and one in a fresh thread measured up to 3x apart under load, which
    would swamp the ratios; at low load they agree.
    """
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn(*args, **kwargs)), name="bench")
    t.start()
    t.join()
    return out[0]


# --- the reference: nanoGPT's model.py layout, written plainly --------------------------


class RefAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.n_head = n_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class RefBlock(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = RefAttention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))


class RefGPT(nn.Module):
    def __init__(self, vocab: int, context: int, n_layer: int, n_head: int, n_embd: int):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(context, n_embd)
        self.h = nn.ModuleList([RefBlock(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.wte.weight = self.lm_head.weight  # tied, as in nanoGPT
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def ref_tokens_per_s(model: RefGPT, data: torch.Tensor, steps: int, warmup: int, batch: int,
                     context: int, seed: int) -> list[float]:
    """nanoGPT's loop: random windows, AdamW (decay on matrices), clip 1.0; per-step tok/s."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        ix = torch.randint(len(data) - context - 1, (batch,), generator=gen)
        x = torch.stack([data[j:j + context] for j in ix])
        y = torch.stack([data[j + 1:j + 1 + context] for j in ix])
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= warmup:
            out.append(batch * context / (time.perf_counter() - t0))
    return out


# --- lmcore ------------------------------------------------------------------------------

def lmcore_tokens_per_s(model: Transformer, data: TokenData, steps: int, warmup: int,
                        batch: int, seed: int, plumbing: bool,
                        home: Path | None = None) -> list[float]:
    """lmcore's trainer as the app runs it; with `plumbing`, inside the job registry.

    Plumbing on: the job thread, the page's callbacks (the run Recorder writing to a SQLite
    run store under `home`, then the JobFeed filling the job's series: train, grad, memory
    from a 20 Hz RSS sampler), and a poller doing what the page's fragment does every 0.5 s:
    snapshot the series, build the 2x2 dashboard figure and serialise it to JSON.
    """
    context = model.config.context
    config = TrainConfig(steps=warmup + steps + 1, batch_size=batch, lr=1e-3, warmup_steps=0,
                         eval_every=0, eval_tokens=256, seed=seed)
    rates: list[float] = []
    last = [0.0]

    def timing(e) -> None:
        if isinstance(e, Step):
            # wall time between consecutive steps: includes the previous step's callback
            if e.step > warmup + 1:
                rates.append(batch * context / (e.elapsed_s - last[0]))
            last[0] = e.elapsed_s

    if not plumbing:
        in_thread(train, model, CausalLM(), data, config, callback=timing)
        return rates

    from lmcore.app.jobs import Job, JobContext
    from lmcore.app.train_charts import training_dashboard
    from lmcore.app.train_job import JobFeed
    from lmcore.runs.store import RunStore
    from lmcore.train.memory import RSSSampler
    from lmcore.train.record import Recorder

    store = RunStore(Path(home or tempfile.mkdtemp()) / "runs.sqlite")
    run_id = store.create("bench", {"train": {}}, session="bench")

    def fn(ctx):
        with RSSSampler(interval=0.05) as sampler:
            page = Recorder(store, run_id, then=JobFeed(ctx, sampler))  # the page's chain
            return train(model, CausalLM(), data, config, stop=ctx.stop,
                         callback=lambda e: (timing(e), page(e)))

    # In one process, job and poller: the cost of the chain itself plus a poller sharing the
    # GIL (an upper bound: the app runs jobs in worker processes, see bench/app_jobs.py).
    job = Job("bench")
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn(JobContext(job))), name="bench")
    t.start()
    while t.is_alive():  # the page's fragment, every 0.5 s
        t.join(0.5)
        training_dashboard(job.snapshot()).to_json()
        _ = (job.progress, job.eta_s, job.status, job.message)
    if not out or out[0].status != "done":
        raise RuntimeError(f"bench job ended without finishing: {out}")
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few steps, for CI (< 60 s)")
    ap.add_argument("--steps", type=int, default=None, help="measured steps per round")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default 2; 1 with --quick: on a busy machine two "
                         "OpenMP threads can stall for whole time slices)")
    args = ap.parse_args()
    # many short interleaved rounds: the load on this shared machine swings within seconds
    steps = args.steps or (3 if args.quick else 8)
    rounds = args.rounds or (1 if args.quick else 8)
    warmup = 2
    args.threads = args.threads or (1 if args.quick else 2)
    torch.set_num_threads(args.threads)
    L, H, W, C, B = 4, 4, 128, 256, 16
    if args.quick:  # CI only checks that it runs: an eighth of the tokens per step
        C, B = 64, 8

    corpus = pydoc_corpus()
    split = corpus.split()
    tok = train_tokenizer("char", split.train)
    data = TokenData.from_text(tok, split.train, split.valid, corpus.fingerprint)
    V = tok.vocab_size

    torch.manual_seed(0)
    ref = RefGPT(V, C, L, H, W)
    torch.manual_seed(0)
    lm = Transformer(TransformerConfig(vocab_size=V, context=C, n_layer=L, n_head=H, n_embd=W,
                                       attention="sdpa"))
    n_ref = sum(p.numel() for p in ref.parameters())
    n_lm = sum(p.numel() for p in lm.parameters())

    res: dict[str, list[float]] = {"ref": [], "lmcore": [], "plain": [], "plumbing": []}
    home = tempfile.TemporaryDirectory(prefix="lmcore-bench-")  # the run store, thrown away
    for r in range(rounds):  # interleaved so load on the machine hits all alike
        res["ref"] += in_thread(ref_tokens_per_s, ref, data.train, steps, warmup, B, C, seed=r)
        res["lmcore"] += lmcore_tokens_per_s(lm, data, steps, warmup, B, r, plumbing=False)
        res["plumbing"] += lmcore_tokens_per_s(lm, data, steps, warmup, B, r, plumbing=True,
                                               home=Path(home.name))
        res["plain"] += lmcore_tokens_per_s(lm, data, steps, warmup, B, r, plumbing=False)
    home.cleanup()
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"shape: {L} layers, {H} heads, width {W}, context {C}, batch {B}, char vocab {V}; "
          f"{args.threads} threads; {rounds} rounds x {steps} steps (medians)\n")
    print("| model | params | tokens/s | ratio vs reference |")
    print("|---|---|---|---|")
    print(f"| reference GPT (nanoGPT layout, sdpa) | {n_ref:,} | {med['ref']:,.0f} | 1.00x |")
    print(f"| lmcore Transformer + trainer (sdpa) | {n_lm:,} | {med['lmcore']:,.0f} | "
          f"{med['lmcore'] / med['ref']:.2f}x |")
    plain = statistics.median(res["plain"] + res["lmcore"])
    over = 1.0 - med["plumbing"] / plain
    print("\n| live-chart plumbing | tokens/s | ratio vs off | overhead |")
    print("|---|---|---|---|")
    print(f"| off (trainer called directly) | {plain:,.0f} | 1.00x | 0.0% |")
    print(f"| on (job registry, SQLite recorder, per-step log, 0.5 s polling + figure) | "
          f"{med['plumbing']:,.0f} | {med['plumbing'] / plain:.2f}x | {100 * over:.1f}% |")
    if not all(math.isfinite(v) for v in med.values()):
        sys.exit("non-finite measurement")
    speed = med["lmcore"] / med["ref"]
    note = " (--quick: too few steps to judge)" if args.quick else ""
    print("\n| target | measured | met |")
    print("|---|---|---|")
    print(f"| lmcore tokens/s >= 1.0x the reference | {speed:.3f}x | "
          f"{'yes' if speed >= 1.0 else 'no'}{note} |")
    print(f"| live-chart plumbing costs < 5% | {100 * over:.1f}% | "
          f"{'yes' if over < 0.05 else 'no'}{note} |")


if __name__ == "__main__":
    main()
