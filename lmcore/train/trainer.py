"""The training loop: a plain function over (model, objective, data, config). It knows no UI.

`train(...)` runs `config.steps` optimizer steps of `objective.loss(model, batch, gen)` on
random (B, T) windows, with warmup-then-cosine learning rate, gradient clipping and periodic
evaluation on held-out text in bits per character and per-token perplexity. It reports typed
events (`Step`, `Eval`, `Done`, `Error`) to a callback, stops at the next step when a
`threading.Event` is set, and is reproducible: the same seed gives the same losses, also
across a kill and a resume from the last checkpoint.

Checkpoints are one safetensors file (model weights, optimizer tensors, RNG states) whose
metadata holds the JSON step/config/optimizer scalars, written to a temporary file and renamed
so a kill mid-write leaves the previous checkpoint intact. Never pickle, never `torch.load`.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from lmcore.data.atomic import remove_stale_temps, write_atomic, write_text_atomic
from lmcore.models.eval_mode import eval_mode
from lmcore.settings import get_settings
from lmcore.train import distributed
from lmcore.train.data import TokenData
from lmcore.train.distributed import World
from lmcore.train.memory import SavedTensors, cuda_peak_bytes, rss_bytes

LN2 = math.log(2.0)
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
STATE_FILE = "train_state.safetensors"

# The update rule each optimizer runs, for the page to show beside the choice (g = gradient).
UPDATE_RULES = {
    "sgd": r"\theta \leftarrow \theta - \eta\, g",
    "momentum": r"v \leftarrow \mu v + g,\quad \theta \leftarrow \theta - \eta\, v",
    "adam": (r"m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2)"
             r" g^2,\quad \theta \leftarrow \theta - \eta\,\frac{m/(1-\beta_1^t)}"
             r"{\sqrt{v/(1-\beta_2^t)}+\epsilon}"),
    "adamw": (r"\text{Adam's } m, v \text{ as above},\quad \theta \leftarrow \theta - \eta\left("
              r"\frac{\hat m}{\sqrt{\hat v}+\epsilon} + \lambda\,\theta\right)"
              r"\ \text{(decay on matrices only)}"),
}


@dataclass
class TrainConfig:
    """Everything that decides a run besides the model and the data."""

    steps: int = 200
    batch_size: int = 16
    context: int | None = None  # tokens per window; default: the model's context
    optimizer: str = "adamw"  # sgd | momentum | adam | adamw
    lr: float = 3e-3
    min_lr: float | None = None  # cosine floor; default lr / 10
    warmup_steps: int = 10
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.1  # adamw only, on matrices (not biases, norms)
    grad_clip: float | None = 1.0  # max global grad norm; None or 0 disables clipping
    eval_every: int = 50  # 0 evaluates only at the end
    eval_tokens: int = 4096  # held-out targets per evaluation (fixed windows, no seed)
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0  # 0: checkpoint only at the end (when checkpoint_dir is set)
    memory_every: int = 10  # count saved-for-backward bytes every k steps (0: never)
    device: str = "cpu"  # where the model trains ('cuda' when a GPU is present)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("steps", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ValueError(f"learning rate must be a positive number, got {self.lr}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        for name in ("eval_every", "checkpoint_every", "memory_every"):  # 0: off
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 turns it off), got "
                                 f"{getattr(self, name)}")
        if self.eval_tokens < 1 or (self.context is not None and self.context < 1):
            raise ValueError(f"eval_tokens and context must be at least 1, got "
                             f"{self.eval_tokens} and {self.context}")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip)
                                               and self.grad_clip >= 0):
            raise ValueError(f"grad_clip must be a number >= 0 (0 or None: no clipping), got "
                             f"{self.grad_clip}")
        for name in ("weight_decay", "eps", "momentum", "beta1", "beta2"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.min_lr is not None and not (math.isfinite(self.min_lr) and self.min_lr >= 0):
            raise ValueError(f"min_lr must be a finite number >= 0, got {self.min_lr}")

    def lr_at(self, step: int) -> float:
        """Learning rate of 1-based `step`: linear warmup, then cosine down to `min_lr`."""
        floor = self.lr / 10 if self.min_lr is None else self.min_lr
        if step <= self.warmup_steps:
            return self.lr * step / max(self.warmup_steps, 1)
        span = max(self.steps - self.warmup_steps, 1)
        ratio = min(1.0, (step - self.warmup_steps) / span)
        return floor + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (self.lr - floor)


def devices() -> list[str]:
    """Where this machine can train: 'cpu', and 'cuda' when torch sees a GPU."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# --- events ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One optimizer step done."""

    step: int
    steps: int
    loss: float  # training loss of this batch, nats per target token
    lr: float
    grad_norm: float  # global norm before clipping
    grad_norms: dict[str, float]  # per layer group (embedding, layer 0.., head), before clipping
    clipped: bool
    tokens_per_s: float
    elapsed_s: float
    rss: int  # process resident set size, bytes
    saved_bytes: int | None = None  # activation bytes autograd kept for backward (this step)
    cuda_peak: int | None = None


@dataclass(frozen=True)
class Eval:
    """Held-out evaluation: nats/token, bits/token, bits/char, per-token perplexity."""

    step: int
    train_loss: float
    valid_loss: float
    bits_per_token: float
    bits_per_char: float
    perplexity: float


@dataclass(frozen=True)
class Done:
    step: int
    status: str  # 'done' or 'stopped'
    train_loss: float
    valid_loss: float
    bits_per_char: float
    perplexity: float
    elapsed_s: float
    checkpoint: str | None


@dataclass(frozen=True)
class Error:
    step: int
    message: str


Event = Step | Eval | Done | Error


@dataclass
class TrainResult:
    status: str  # 'done' | 'stopped' | 'failed'
    steps: int  # the last step completed
    losses: list[float] = field(default_factory=list)  # per step run in this call
    evals: list[Eval] = field(default_factory=list)
    train_loss: float = float("nan")
    valid_loss: float = float("nan")
    bits_per_char: float = float("nan")
    perplexity: float = float("nan")
    elapsed_s: float = 0.0
    tokens_per_s: float = 0.0
    checkpoint: str | None = None
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """The final numbers as a flat dict (what the run store records)."""
        d = asdict(self)
        d.pop("losses")
        d.pop("evals")
        return d


# --- pieces ------------------------------------------------------------------------------

def layer_groups(model: torch.nn.Module) -> dict[str, list[torch.nn.Parameter]]:
    """Parameters grouped for per-layer gradient norms: 'layer i' for repeated blocks.

    A parameter whose dotted name contains a number belongs to that numbered layer; others
    go to a group named after their top-level module (embeddings, final norm, head).
    """
    groups: dict[str, list[torch.nn.Parameter]] = {}
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        m = re.search(r"(?:^|\.)(\d+)(?:\.|$)", name)
        key = f"layer {m.group(1)}" if m else name.split(".")[0]
        groups.setdefault(key, []).append(p)
    layers = sorted((k for k in groups if k.startswith("layer ")), key=lambda k: int(k[6:]))
    before = [k for k in groups if not k.startswith("layer ") and _is_input_side(k)]
    after = [k for k in groups if not k.startswith("layer ") and not _is_input_side(k)]
    return {k: groups[k] for k in before + layers + after}


def _is_input_side(name: str) -> bool:
    return any(s in name for s in ("emb", "wte", "wpe", "tok", "pos"))


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named in the config (AdamW decays matrices only, as nanoGPT does)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr)
    if config.optimizer == "momentum":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)
    betas = (config.beta1, config.beta2)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=betas, eps=config.eps)
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=betas, eps=config.eps)


def _window(objective: Any, context: int) -> int:
    """Tokens per training window: causal objectives need context + 1 (inputs and targets)."""
    fn = getattr(objective, "window", None)
    return int(fn(context)) if callable(fn) else context + 1


def _loss(objective: Any, model: torch.nn.Module, batch: torch.Tensor,
          gen: torch.Generator) -> torch.Tensor:
    out = objective.loss(model, batch, gen)
    return out[0] if isinstance(out, tuple) else out


@torch.no_grad()
def evaluate(model: torch.nn.Module, objective: Any, data: TokenData, window: int,
             max_tokens: int = 4096, split: str = "valid", batch_size: int = 16) -> float:
    """Mean loss (nats per target token) over fixed disjoint windows of `split`."""
    device = next(model.parameters()).device
    windows = data.eval_windows(window, max_tokens=max_tokens, split=split)  # (N, T)
    gen = torch.Generator().manual_seed(1234)  # fixed: masked objectives draw positions
    total, weight = 0.0, 0
    with eval_mode(model):
        for i in range(0, len(windows), batch_size):
            batch = windows[i:i + batch_size].to(device)
            total += float(_loss(objective, model, batch, gen).detach()) * len(batch)
            weight += len(batch)
    return total / weight if weight else float("nan")


def _eval_event(step: int, model, objective, data: TokenData, window: int,
                config: TrainConfig) -> Eval:
    valid = evaluate(model, objective, data, window, config.eval_tokens, "valid",
                     config.batch_size)
    train_l = evaluate(model, objective, data, window, config.eval_tokens, "train",
                       config.batch_size)
    bpt = valid / LN2
    return Eval(step=step, train_loss=train_l, valid_loss=valid, bits_per_token=bpt,
                bits_per_char=bpt * data.tokens_per_char("valid"),
                perplexity=math.exp(min(valid, 700.0)))


# --- checkpoints -------------------------------------------------------------------------

def save_state(path: str | Path, step: int, model: torch.nn.Module,
               optimizer: torch.optim.Optimizer, gen: torch.Generator,
               config: TrainConfig) -> Path:
    """Write model + optimizer + RNG state at `step` to `path/train_state.safetensors`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v.detach().cpu().clone().contiguous()
    sd = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{idx}.{name}"] = v.detach().cpu().clone().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = v
    tensors["rng.gen"] = gen.get_state().clone()
    tensors["rng.torch"] = torch.get_rng_state().clone()
    meta = {"step": step, "config": asdict(config), "param_groups": sd["param_groups"],
            "opt_scalars": scalars, "optimizer": config.optimizer}
    remove_stale_temps(path)  # what a save killed half-way left behind
    # atomic: a kill never leaves half a checkpoint
    write_atomic(path / STATE_FILE,
                 lambda tmp: save_file(tensors, tmp, metadata={"lmcore": json.dumps(meta)}))
    readable = {k: meta[k] for k in ("step", "optimizer", "config")}
    write_text_atomic(path / "train_state.json", json.dumps(readable, indent=1), fsync=False)
    return path / STATE_FILE


@contextmanager
def _reading_state(file: Path) -> Iterator[Any]:
    """`safe_open(file)`, with a damaged or foreign file turned into a ValueError that says so
    (safetensors raises its own error type, json and the metadata lookups theirs)."""
    if not file.exists():
        raise FileNotFoundError(f"no training checkpoint at {file}")
    try:
        with safe_open(str(file), framework="pt") as f:
            yield f
    except (SafetensorError, json.JSONDecodeError, KeyError, TypeError, OSError) as exc:
        raise ValueError(f"the training state {file} is damaged or not lmcore's "
                         f"({type(exc).__name__}: {exc}); train afresh without --resume, or "
                         "resume from an intact copy") from None


def load_state(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               gen: torch.Generator) -> int:
    """Restore what `save_state` wrote; return the step it was taken at."""
    file = Path(path)
    if file.is_dir():
        file = file / STATE_FILE
    remove_stale_temps(file.parent)  # what a save killed half-way left behind
    with _reading_state(file) as f:
        meta = json.loads(f.metadata()["lmcore"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta["optimizer"] != _optimizer_name(optimizer, meta["optimizer"]):
        raise ValueError(f"checkpoint was trained with {meta['optimizer']}; resume with the "
                         "same optimizer")
    model_sd = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        missing, unexpected = model.load_state_dict(model_sd, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise ValueError("checkpoint does not fit this model (tensor shapes differ): use the "
                         "same model config") from exc
    if missing or unexpected:
        raise ValueError(f"checkpoint does not fit this model (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}): use the same model config")
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for idx, sc in meta["opt_scalars"].items():
        state.setdefault(int(idx), {}).update(sc)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    gen.set_state(tensors["rng.gen"])
    torch.set_rng_state(tensors["rng.torch"])
    return int(meta["step"])


def saved_step(path: str | Path, model: torch.nn.Module, config: TrainConfig) -> int:
    """The step of the training state in `path`, checked to fit `model` and `config`.

    Reads only the metadata and tensor shapes (nothing is loaded), so a caller can refuse a
    resume before it records a run; raises FileNotFoundError or ValueError saying why.
    """
    file = Path(path)
    if file.is_dir() or not file.suffix:
        file = file / STATE_FILE
    remove_stale_temps(file.parent)  # what a save killed half-way left behind
    with _reading_state(file) as f:
        meta = json.loads(f.metadata()["lmcore"])
        shapes = {k[6:]: tuple(f.get_slice(k).get_shape()) for k in f.keys()
                  if k.startswith("model.")}
        for key in ("step", "optimizer", "param_groups", "opt_scalars"):
            meta[key]  # noqa: B018 (a KeyError here means a damaged state)
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if shapes != want:
        differ = sorted(k for k in set(shapes) | set(want) if shapes.get(k) != want.get(k))
        raise ValueError(f"checkpoint does not fit this model ({', '.join(differ[:3])} "
                         "differ): use the same model config")
    if meta["optimizer"] != config.optimizer:
        raise ValueError(f"checkpoint was trained with {meta['optimizer']}; resume with the "
                         "same optimizer")
    step = int(meta["step"])
    if step >= config.steps:
        raise ValueError(f"the training state is at step {step:,} already: ask for more than "
                         f"{step:,} steps to continue")
    return step


def _optimizer_name(opt: torch.optim.Optimizer, saved: str) -> str:
    if isinstance(opt, torch.optim.AdamW):
        return "adamw"
    if isinstance(opt, torch.optim.Adam):
        return "adam"
    if isinstance(opt, torch.optim.SGD):
        return "momentum" if opt.param_groups[0]["momentum"] else "sgd"
    return saved


# --- the loop ----------------------------------------------------------------------------

M = TypeVar("M")


def seeded(build: Callable[[], M], seed: int) -> M:
    """`build()` with torch's global RNG seeded: same seed, same initial weights.

    The global RNG state is restored afterwards, so other users of it are not disturbed.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _model_context(model: torch.nn.Module) -> int:
    cfg = getattr(model, "config", None)
    ctx = getattr(cfg, "context", None)
    if ctx is None:
        raise ValueError("set TrainConfig.context: the model has no config.context")
    return int(ctx)


def train(model: torch.nn.Module, objective: Any, data: TokenData, config: TrainConfig,
          callback: Callable[[Event], None] | None = None,
          stop: threading.Event | None = None,
          resume_from: str | Path | None = None, world: World | None = None) -> TrainResult:
    """Train `model` on `data` with `objective`; report events; stop when `stop` is set.

    Config or limit problems raise (ValueError / LimitError) before training starts; anything
    that goes wrong during training becomes an `Error` event and a result with status
    'failed' and a readable `error`.

    `world` (several ranks under torchrun, process group joined): the model is wrapped in
    DistributedDataParallel, each rank computes its share of the same global batch, the
    reported loss is the global batch's, a stop on any rank stops all at the same step, and
    only rank 0 evaluates and checkpoints (see `distributed.py`).
    """
    settings = get_settings()
    settings.check("max_steps", config.steps)
    n_params = sum(p.numel() for p in model.parameters())
    settings.check("max_params", n_params)
    context = config.context or _model_context(model)
    window = _window(objective, context)
    data.check(window)
    emit = callback or (lambda event: None)

    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but this machine has no usable GPU")
    model.to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(config.seed)  # dropout and any other global-RNG use
    gen = torch.Generator().manual_seed(config.seed)  # batches and objective randomness
    optimizer = make_optimizer(model, config)
    start = 0
    if resume_from is not None:
        start = load_state(resume_from, model, optimizer, gen)
    ddp = world is not None and world.size > 1
    main = world is None or world.is_main
    shard = (world.rank, world.size) if ddp else (0, 1)
    net: torch.nn.Module = model
    if ddp:
        from torch.nn.parallel import DistributedDataParallel

        distributed.check_batch(world, config.batch_size)
        net = DistributedDataParallel(model, device_ids=[device.index]
                                      if device.type == "cuda" else None)
    groups = layer_groups(model)
    params = [p for ps in groups.values() for p in ps]
    clip = config.grad_clip if config.grad_clip and config.grad_clip > 0 else None
    result = TrainResult(status="running", steps=start)
    tokens_per_step = config.batch_size * context
    t_start = time.perf_counter()
    step = start
    last_eval: Eval | None = None
    model.train()
    try:
        while step < config.steps:
            asked = stop is not None and stop.is_set()
            if ddp:  # every rank stops at the same step when any one was asked
                flag = torch.tensor([float(asked)], device=device)
                asked = float(distributed.global_mean(flag, world)) > 0
            if asked:
                break
            step += 1
            t0 = time.perf_counter()
            lr = config.lr_at(step)
            for g in optimizer.param_groups:
                g["lr"] = lr
            batch = data.batch("train", config.batch_size, window, gen,
                               shard=shard).to(device)  # (B / ranks, T)
            measure = config.memory_every > 0 and (step - start == 1
                                                   or step % config.memory_every == 0)
            saved = SavedTensors().watch(model) if measure else None
            if saved is not None:
                with saved:
                    loss = _loss(objective, net, batch, gen)
            else:
                loss = _loss(objective, net, batch, gen)
            loss_v = float(distributed.global_mean(loss, world) if ddp else loss.detach())
            if not math.isfinite(loss_v):
                raise FloatingPointError(
                    f"the loss became {loss_v} at step {step}: the learning rate "
                    f"({lr:.3g}) is probably too high; lower it or turn on gradient clipping")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            group_norms = {name: _norm(ps) for name, ps in groups.items()}  # tensors
            total_t = torch.linalg.vector_norm(torch.stack(list(group_norms.values())))
            total = float(total_t)
            norms = {name: float(v) for name, v in group_norms.items()}
            clipped = clip is not None and total > clip
            if clip is not None:
                torch.nn.utils.clip_grads_with_norm_(params, clip, total_t)
            optimizer.step()
            dt = time.perf_counter() - t0
            result.losses.append(loss_v)
            result.steps = step
            emit(Step(step=step, steps=config.steps, loss=loss_v, lr=lr, grad_norm=total,
                      grad_norms=norms, clipped=clipped,
                      tokens_per_s=tokens_per_step / dt if dt > 0 else float("inf"),
                      elapsed_s=time.perf_counter() - t_start, rss=rss_bytes(),
                      saved_bytes=saved.bytes if saved is not None else None,
                      cuda_peak=cuda_peak_bytes() if device.type == "cuda" else None))
            if (main and config.eval_every and step % config.eval_every == 0
                    and step < config.steps):
                last_eval = _eval_event(step, model, objective, data, window, config)
                result.evals.append(last_eval)
                emit(last_eval)
            if (main and config.checkpoint_dir and config.checkpoint_every
                    and step % config.checkpoint_every == 0 and step < config.steps):
                save_state(config.checkpoint_dir, step, model, optimizer, gen, config)
        stopped = step < config.steps
        if not main:  # other ranks: the loss curve is rank 0's to evaluate and save
            result.status = "stopped" if stopped else "done"
            result.elapsed_s = time.perf_counter() - t_start
            return result
        if last_eval is None or last_eval.step != step:
            last_eval = _eval_event(step, model, objective, data, window, config)
            result.evals.append(last_eval)
            emit(last_eval)
        if config.checkpoint_dir:
            result.checkpoint = str(save_state(config.checkpoint_dir, step, model, optimizer,
                                               gen, config))
        result.status = "stopped" if stopped else "done"
        result.train_loss = last_eval.train_loss
        result.valid_loss = last_eval.valid_loss
        result.bits_per_char = last_eval.bits_per_char
        result.perplexity = last_eval.perplexity
        result.elapsed_s = time.perf_counter() - t_start
        ran = step - start
        result.tokens_per_s = ran * tokens_per_step / result.elapsed_s if result.elapsed_s else 0
        emit(Done(step=step, status=result.status, train_loss=result.train_loss,
                  valid_loss=result.valid_loss, bits_per_char=result.bits_per_char,
                  perplexity=result.perplexity, elapsed_s=result.elapsed_s,
                  checkpoint=result.checkpoint))
    except Exception as exc:  # a readable message for the page or the terminal
        result.status = "failed"
        result.error = distributed.readable(exc) if ddp and _collective(exc) else _readable(exc)
        result.elapsed_s = time.perf_counter() - t_start
        try:
            emit(Error(step=step, message=result.error))
        except Exception:  # the callback itself failed: the result still says why
            pass
    return result


def _norm(params: list[torch.nn.Parameter]) -> torch.Tensor:
    """The L2 norm of the gradients of `params` (0 when none has a gradient)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:  # on the parameters' device: torch.stack refuses a CPU zero among CUDA norms
        return torch.zeros((), device=params[0].device if params else None)
    return torch.nn.utils.get_total_norm(grads)


def _collective(exc: BaseException) -> bool:
    """A failure of a collective (a peer rank died, hung or closed its connection)."""
    name = type(exc).__name__
    return name in ("DistBackendError", "DistNetworkError", "DistError") or (
        isinstance(exc, RuntimeError) and any(w in str(exc) for w in (
            "Connection closed", "Connection reset", "Timed out", "timed out", "gloo",
            "NCCL", "peer")))


def _readable(exc: BaseException) -> str:
    if isinstance(exc, ValueError | FloatingPointError | FileNotFoundError):
        return str(exc)
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return "ran out of memory: use a smaller model, batch or context"
    return f"{type(exc).__name__}: {exc}"
