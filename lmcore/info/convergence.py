"""A Transformer learning a source whose entropy rate is known: cross-entropy and real code
length measured as training proceeds, both falling toward the rate.

The source coding theorem puts the entropy rate H of a source under every code for it: no
model's cross-entropy on the source's text stays below H (on average), and an arithmetic coder
driven by the model turns its cross-entropy into a file within a few bytes. So while a model
trains, its held-out cross-entropy falls toward H and the coded size follows it down; the gap
left at the end is what the model has not learned (KL between source and model, per char).
Measured here, not drawn: every point scores held-out text and range-codes a slice of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from lmcore.info.coding import decompress, encode

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class ConvergenceConfig:
    """The tiny char Transformer, its short run, and what each measurement scores and codes."""

    steps: int = 300
    measure_every: int = 30  # steps between measurements (and one before training)
    context: int = 32
    n_layer: int = 1
    n_head: int = 2
    n_embd: int = 32
    batch_size: int = 16
    lr: float = 3e-3
    eval_chars: int = 5000  # held-out characters scored for the cross-entropy
    code_chars: int = 1000  # held-out characters actually range-coded at each measurement
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "measure_every", "context", "eval_chars", "code_chars"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.code_chars > self.eval_chars:
            raise ValueError(f"code_chars ({self.code_chars:,}) must not exceed eval_chars "
                             f"({self.eval_chars:,}): the coded slice is part of the scored text")


@dataclass(frozen=True)
class ConvergencePoint:
    """The model after `step` optimizer steps, on held-out text of the source."""

    step: int
    cross_entropy: float  # bits/char on the scored held-out text
    code_bits_per_char: float  # range-coder payload per char on the coded slice (real bits)
    code_cross_entropy: float  # the model's clipped cross-entropy on that same slice
    entropy_rate: float | None
    seconds: float  # since training started

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Convergence:
    """Every measurement of one run, and whether its last code decoded back exactly."""

    points: list[ConvergencePoint] = field(default_factory=list)
    entropy_rate: float | None = None
    status: str = "done"  # 'done' | 'stopped'
    round_trip: bool = False  # the last coded slice decoded to the same text
    parameters: int = 0
    chars_coded: int = 0


def transformer_convergence(train: str, test: str, entropy_rate: float | None = None,
                            config: ConvergenceConfig | None = None, *,
                            on_point: Callable[[ConvergencePoint], None] | None = None,
                            progress: Progress | None = None,
                            stop: threading.Event | None = None) -> Convergence:
    """Train a char Transformer on `train`, measuring cross-entropy and code length on `test`
    before training and every `measure_every` steps (`on_point` gets each one as it comes)."""
    import torch

    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.models.lm import score_ids
    from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM
    from lmcore.train.data import TokenData
    from lmcore.train.objectives import CausalLM
    from lmcore.train.trainer import Step, TrainConfig
    from lmcore.train.trainer import train as train_model

    cfg = config or ConvergenceConfig()
    if not train or not test:
        raise ValueError("the source needs both training and held-out text")
    scored = test[:cfg.eval_chars]
    coded = scored[:cfg.code_chars]
    tok = train_tokenizer("char", train)
    data = TokenData.from_text(tok, train, scored)
    data.check(cfg.context + 1)  # a readable error when the text is too short for one window
    scored_ids = tok.encode(scored)
    torch.manual_seed(cfg.seed)
    net = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=cfg.context,
                                        n_layer=cfg.n_layer, n_head=cfg.n_head,
                                        n_embd=cfg.n_embd))
    lm = TransformerLM(net, tok)
    out = Convergence(entropy_rate=entropy_rate, parameters=net.num_parameters(),
                      chars_coded=len(coded))
    t0 = time.perf_counter()
    last: list = []  # the latest encoding, decoded at the end to prove the round trip

    def measure(step: int) -> None:
        ce = score_ids(lm, scored_ids, scored).bits_per_char
        enc = encode(lm, coded)
        last[:] = [enc]
        point = ConvergencePoint(step=step, cross_entropy=ce,
                                 code_bits_per_char=enc.payload_bits / enc.chars,
                                 code_cross_entropy=enc.ideal_bits / enc.chars,
                                 entropy_rate=entropy_rate, seconds=time.perf_counter() - t0)
        out.points.append(point)
        if on_point is not None:
            on_point(point)
        if progress is not None:
            progress(step / cfg.steps, f"step {step:,} of {cfg.steps:,}: {ce:.3f} bits/char")

    def on_event(event: object) -> None:
        if isinstance(event, Step) and (event.step % cfg.measure_every == 0
                                        or event.step == cfg.steps):
            measure(event.step)

    measure(0)
    result = train_model(net, CausalLM(), data, TrainConfig(
        steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
        warmup_steps=min(10, cfg.steps), eval_every=0, eval_tokens=512, memory_every=0),
        callback=on_event, stop=stop)
    if result.status == "failed":
        raise ValueError(f"training failed at step {result.steps}: {result.error}")
    out.status = result.status
    if last:
        out.round_trip = decompress(lm, last[0].data) == coded
    return out
