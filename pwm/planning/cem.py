"""The cross-entropy method over action sequences, and receding-horizon control (issue 29).

A plan is H steps of an action made of `continuous` real parts (each in [low, high]) and
`discrete` parts (each one of a few values, e.g. the ego's C/D in Polis). `cem` minimises a cost
`score(u, k) -> (B, S)` over B independent problems at once (episodes run in parallel), with S
candidate sequences per problem: u (B, S, H, Dc) float, k (B, S, H, Dd) long indices into each
discrete part's values. Per iteration the continuous parts are drawn from a diagonal Gaussian
(clipped to the bounds) and the discrete parts from per-step categoricals; both are refit to the
`topk` cheapest candidates (LeWM's CEM: 300 samples, top 30, 30 iterations, horizon 5). With
`discrete="exhaustive"` every discrete sequence instead gets an equal share of the samples at every
iteration (stratified: each of the M sequences is scored with the same ceil(S / M) continuous
draws, candidate i pairing sequence i mod M with draw i div M), so no discrete choice is ever left
unexplored and the discrete sequences are compared on common continuous draws: a discrete choice
whose own effect on the cost is small is not decided by which of its draws was luckiest (the ego's
C/D in Polis beside its move); M = prod(values)^(H Dd) must not exceed S. Candidates of equal cost
rank by index (a stable sort), so where the discrete choice does not change the cost at all the
first sequence wins: each discrete part's first value (in Polis C; a deterministic simulator
often cannot see a defection's cost within the horizon), never an order the sort happens to
leave. The plan
returned is the cheapest candidate seen over all iterations (the running best, so more iterations
never return a worse plan). Candidate 0 of every iteration is the current mean with the modal
discrete choice. All randomness comes from the explicit `torch.Generator`.

`RecedingHorizon` re-plans at every control step, warm-starting the continuous mean from the
previous plan shifted by one step, and executes only the first step.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

import torch
from torch import Tensor


class PlanningError(ValueError):
    """Input a planner refuses before it runs (one line naming the option)."""


@dataclass(frozen=True)
class ActionSpace:
    """Per-step action: continuous parts in [low, high] and discrete parts over `choices`.

    low, high: bounds of each continuous part (equal lengths, low < high).
    choices: per discrete part, its allowed values (each at least 2; e.g. ((1.0, -1.0),) for C/D).
    """

    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    choices: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self):
        if len(self.low) != len(self.high):
            raise PlanningError("action space: low and high differ in length")
        if any(not lo < hi for lo, hi in zip(self.low, self.high, strict=True)):
            raise PlanningError("action space: every low must be below its high")
        if any(len(c) < 2 for c in self.choices):
            raise PlanningError("action space: a discrete part needs at least 2 values")
        if not self.low and not self.choices:
            raise PlanningError("action space: no action parts")

    @property
    def continuous(self) -> int:
        return len(self.low)

    @property
    def discrete(self) -> int:
        return len(self.choices)

    def values(self, k: Tensor) -> Tensor:
        """Discrete indices (..., Dd) -> their values (..., Dd) float."""
        out = torch.zeros(k.shape, dtype=torch.float32)
        for d, vals in enumerate(self.choices):
            out[..., d] = torch.tensor(vals, dtype=torch.float32)[k[..., d]]
        return out


@dataclass(frozen=True)
class CEMConfig:
    """CEM budget and options (LeWM's defaults; `PRESETS` holds the CPU one).

    samples: candidate sequences per iteration and problem.
    topk: elites the distribution is refit to.
    iterations: refits per plan.
    horizon: planned steps H (a step of a frame-skip model is a block of frames).
    init_std: initial std of the continuous parts, as a fraction of half their range.
    min_std: floor of the refit std, same units.
    smoothing: weight of the uniform distribution mixed into each refit categorical.
    discrete: "cem" (categorical CEM) or "exhaustive" (every discrete sequence at every iteration).
    warm_start: start each re-plan from the previous plan shifted by one step.
    """

    samples: int = 300
    topk: int = 30
    iterations: int = 30
    horizon: int = 5
    init_std: float = 1.0
    min_std: float = 0.05
    smoothing: float = 0.05
    discrete: str = "cem"
    warm_start: bool = True

    def validate(self, space: ActionSpace | None = None) -> CEMConfig:
        """Raise PlanningError (one line naming the option) for an impossible budget."""
        if self.horizon <= 0:
            raise PlanningError(f"--horizon must be >= 1, got {self.horizon}")
        if self.samples <= 0:
            raise PlanningError(f"--samples must be >= 1 (a budget of zero samples plans nothing), "
                                f"got {self.samples}")  # fmt: skip
        if not 1 <= self.topk <= self.samples:
            raise PlanningError(f"--topk must be in [1, --samples {self.samples}], got {self.topk}")
        if self.iterations <= 0:
            raise PlanningError(f"--iterations must be >= 1, got {self.iterations}")
        if not self.init_std > 0 or self.min_std < 0:
            raise PlanningError("--init-std must be > 0 and --min-std >= 0")
        if not 0 <= self.smoothing <= 1:
            raise PlanningError(f"--smoothing must be in [0, 1], got {self.smoothing}")
        if self.discrete not in ("cem", "exhaustive"):
            raise PlanningError(f"--discrete must be cem or exhaustive, got {self.discrete!r}")
        if space is not None and self.discrete == "exhaustive" and space.discrete:
            m = sequences(space, self.horizon).shape[0]
            if m > self.samples:
                raise PlanningError(
                    f"--discrete exhaustive needs --samples >= {m} (every discrete sequence of "
                    f"{self.horizon} steps), got {self.samples}"
                )
        return self

    def meta(self) -> dict:
        return asdict(self)


PRESETS = {
    "lewm": CEMConfig(),  # LeWM: 300 samples, top 30, 30 iterations, horizon 5
    # about 0.3 s per decision on a 2-core CPU for the CPU-preset models (BENCH.md, planning)
    "cpu": CEMConfig(samples=64, topk=8, iterations=5, horizon=3),
}


class Plan(NamedTuple):
    """The best sequence per problem: u (B, H, Dc), k (B, H, Dd) long, cost (B,)."""

    u: Tensor
    k: Tensor
    cost: Tensor


Score = Callable[[Tensor, Tensor], Tensor]  # u (B, S, H, Dc), k (B, S, H, Dd) -> cost (B, S)


def sequences(space: ActionSpace, horizon: int) -> Tensor:
    """Every discrete sequence, (M, H, Dd) long; M = prod(len(choices))^H."""
    per_step = list(itertools.product(*[range(len(c)) for c in space.choices]))  # (m, Dd)
    seqs = list(itertools.product(per_step, repeat=horizon))  # (M, H, Dd)
    return torch.tensor(seqs, dtype=torch.long).reshape(len(seqs), horizon, space.discrete)


def cem(
    score: Score,
    space: ActionSpace,
    cfg: CEMConfig,
    batch: int,
    generator: torch.Generator,
    init: Tensor | None = None,
) -> Plan:
    """Minimise `score` over B problems; `init` (B, H, Dc): the initial continuous mean."""
    cfg.validate(space)
    B, S, H, E = batch, cfg.samples, cfg.horizon, cfg.topk
    low = torch.tensor(space.low, dtype=torch.float32)  # (Dc,)
    high = torch.tensor(space.high, dtype=torch.float32)
    half = (high - low) / 2
    mean = ((low + high) / 2).expand(B, H, -1).clone() if init is None else init.clone()
    std = (half * cfg.init_std).expand(B, H, -1).clone()  # (B, H, Dc)
    n_max = max((len(c) for c in space.choices), default=1)
    valid = torch.zeros(space.discrete, n_max, dtype=torch.bool)  # (Dd, n) real values
    for d, vals in enumerate(space.choices):
        valid[d, : len(vals)] = True
    uniform = valid.float() / valid.float().sum(-1, keepdim=True).clamp(min=1)  # (Dd, n)
    probs = uniform.expand(B, H, -1, -1).clone()  # (B, H, Dd, n)
    strata = sequences(space, H) if cfg.discrete == "exhaustive" and space.discrete else None
    best_u = mean.clone()
    best_k = torch.zeros(B, H, space.discrete, dtype=torch.long)
    best_c = torch.full((B,), float("inf"))
    rows = torch.arange(B)[:, None]
    for _ in range(cfg.iterations):
        if strata is None:
            noise = torch.randn(B, S, H, space.continuous, generator=generator)
        else:  # common draws: candidate i has draw i // M (every sequence sees the same draws)
            M = len(strata)
            draws = torch.randn(B, -(-S // M), H, space.continuous, generator=generator)
            noise = draws[:, torch.arange(S) // M]
        u = mean[:, None] + std[:, None] * noise  # (B, S, H, Dc)
        u[:, : 1 if strata is None else len(strata)] = mean[:, None]  # draw 0: the mean
        u = torch.maximum(torch.minimum(u, high), low)
        if strata is not None:
            k = strata[torch.arange(S) % len(strata)].expand(B, -1, -1, -1)  # (B, S, H, Dd)
        elif space.discrete:
            flat = probs.reshape(-1, n_max)  # (B H Dd, n)
            draw = torch.multinomial(flat, S, replacement=True, generator=generator)
            k = draw.reshape(B, H, space.discrete, S).permute(0, 3, 1, 2)  # (B, S, H, Dd)
            k[:, 0] = probs.argmax(-1)
        else:
            k = torch.zeros(B, S, H, 0, dtype=torch.long)
        cost = score(u, k)  # (B, S)
        if cost.shape != (B, S):
            raise ValueError(f"score returned shape {tuple(cost.shape)}, expected {(B, S)}")
        cost = torch.nan_to_num(cost.float(), nan=float("inf"))
        order = cost.argsort(dim=1, stable=True)[:, :E]  # (B, E); ties: the lower index
        top = cost[rows, order[:, :1]][:, 0]  # (B,)
        better = top < best_c
        best_c = torch.where(better, top, best_c)
        best_u[better] = u[rows, order[:, :1]][:, 0][better]
        best_k[better] = k[rows, order[:, :1]][:, 0][better]
        if space.continuous:
            elite_u = u[rows, order]  # (B, E, H, Dc)
            mean = elite_u.mean(1)
            std = torch.maximum(elite_u.std(1, correction=0), half * cfg.min_std)
        if space.discrete and strata is None:
            elite_k = k[rows, order]  # (B, E, H, Dd)
            counts = torch.nn.functional.one_hot(elite_k, n_max).float().mean(1)  # (B, H, Dd, n)
            probs = (1 - cfg.smoothing) * counts * valid + cfg.smoothing * uniform
    return Plan(best_u, best_k, best_c)


class RecedingHorizon:
    """Re-plan every control step with `cem`; the first planned step is the one executed.

    The continuous mean of each plan starts from the previous plan shifted by one step (its last
    step repeated) when `cfg.warm_start`; `reset()` forgets it (a new episode). `plans` counts
    the calls (tests check one plan per step).
    """

    def __init__(self, space: ActionSpace, cfg: CEMConfig, generator: torch.Generator):
        self.space, self.cfg, self.generator = space, cfg.validate(space), generator
        self.previous: Plan | None = None
        self.plans = 0

    def reset(self) -> None:
        self.previous = None

    def plan(self, score: Score, batch: int) -> Plan:
        init = None
        if self.cfg.warm_start and self.previous is not None:
            u = self.previous.u
            init = torch.cat([u[:, 1:], u[:, -1:]], dim=1)  # (B, H, Dc)
        plan = cem(score, self.space, self.cfg, batch, self.generator, init)
        self.previous, self.plans = plan, self.plans + 1
        return plan

    def act(self, score: Score, batch: int) -> tuple[Tensor, Tensor]:
        """Plan and return the first step: u (B, Dc), k (B, Dd)."""
        plan = self.plan(score, batch)
        return plan.u[:, 0], plan.k[:, 0]


def with_budget(cfg: CEMConfig, **changes) -> CEMConfig:
    """A copy of `cfg` with some fields changed (and validated)."""
    return replace(cfg, **changes).validate()
