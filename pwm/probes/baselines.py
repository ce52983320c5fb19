"""Baseline detectors on the same items (DESIGN 4.4), scored by the same metric code.

Each detector gives a per-frame surprise curve (E, T) that goes through the same calibration,
window and aggregators as a model's, except the ideal observer, whose event score is the item's
exact surprisal. The random-init model is the trained model's code path with random weights
(`checkpoint.random_model`), so it is not here.

- `pixel_difference`: ||x_t - x_{t-1}||_2 over all pixels and channels — a detector of visual
  change. DESIGN 3.1 matches the cue magnitudes, so it must not tell C from D.
- `defection_count` (Polis): the number of defections executed at frame t — "every defection is
  surprising". It cannot pass M1 (equal outcome frames) and fails R by construction.
- `last_move_errors` (Polis): a tit-for-tat observer predicts that each player repeats its
  partner's last action toward it (cooperation when they have not met in the episode); surprise
  = the number of executed actions at frame t that break that prediction.
- `ideal_observer`: the items' `ideal_surprisal`, -log P(the event's executed actions | full
  state) from the simulator's policy probabilities (a large sentinel for law violations).
- `frame_only` (Polis): the frame-only observer (data_gen/polis_observer.py), a Bayesian
  observer that knows the world's law and population mix but sees only the exchanges inside the
  model's context: the achievable ceiling for that context (DESIGN 4.4). It scores the actions
  at t* (A's; B's too when B is not the ego, whose actions are inputs); a teleport, a violation
  of the game's physics that it does not model, gets the violation sentinel as for the ideal
  observer.
"""

from __future__ import annotations

import numpy as np

from data_gen.agents import D as DEFECT
from data_gen.polis_config import PolisConfig
from data_gen.polis_observer import frame_only_surprisal
from pwm.data.format import Dataset
from pwm.probes.config import ProbeError
from pwm.probes.metrics import VIOLATION


def pixel_difference(pixels: np.ndarray) -> np.ndarray:
    """pixels (E, T, H, W, 3) uint8 -> (E, T) frame-change magnitude, NaN at t = 0."""
    out = np.full(pixels.shape[:2], np.nan)
    for t in range(1, pixels.shape[1]):  # one frame at a time keeps memory at one frame pair
        d = pixels[:, t].astype(np.float64) - pixels[:, t - 1]  # (E, H, W, 3)
        out[:, t] = np.sqrt((d * d).reshape(len(d), -1).sum(axis=1))
    return out


def defection_count(executed: np.ndarray) -> np.ndarray:
    """executed (E, T, N) int (1 C, 0 D, -1 none) -> (E, T) defections at each frame."""
    return (executed == DEFECT).sum(axis=-1).astype(np.float64)


def last_move_errors(executed: np.ndarray, partner: np.ndarray) -> np.ndarray:
    """Tit-for-tat prediction errors, (E, T): executed (E, T, N), partner (E, T, N) (-1 none)."""
    E, T, N = executed.shape
    last = np.ones((E, N, N), dtype=np.int8)  # last[e, i, j]: i's last action toward j (C)
    out = np.zeros((E, T))
    e, i = np.arange(E)[:, None], np.arange(N)[None, :]
    for t in range(T):
        p = partner[:, t].astype(int)  # (E, N)
        paired = p >= 0
        j = np.where(paired, p, i)  # (E, N)
        predicted = last[e, j, i]  # my partner's last action toward me
        act = executed[:, t]
        out[:, t] = ((act != predicted) & paired).sum(axis=1)
        ee, ii = np.nonzero(paired)
        last[ee, ii, j[ee, ii]] = act[ee, ii]
    return out


def curves(dataset: Dataset, episodes: np.ndarray) -> dict[str, np.ndarray]:
    """Every per-frame baseline the item set supports: name -> (I, T) for the given episodes."""
    out = {}
    if "pixels" in dataset.names:  # shard by shard: the pixels are never all in memory
        per_shard = [pixel_difference(np.asarray(s)) for s in dataset.shards("pixels")]
        out["pixel_diff"] = np.concatenate(per_shard)[episodes]
    if {"executed", "partner"} <= set(dataset.names):
        executed = dataset.array("executed")[episodes]
        out["any_defection"] = defection_count(executed)
        out["last_move"] = last_move_errors(executed, dataset.array("partner")[episodes])
    return out


def world_config(items) -> PolisConfig:
    """The Polis world an item set was made in (its manifest), checked; ProbeError if not one."""
    saved = dict(items.dataset.manifest.get("config", {}).get("world", {}))
    saved["dispositions"] = tuple(saved.get("dispositions", ()))
    known = set(PolisConfig.__dataclass_fields__)
    try:
        return PolisConfig(**{k: v for k, v in saved.items() if k in known})
    except (TypeError, ValueError) as e:
        raise ProbeError(f"{items.root}: its Polis world config is not valid ({e})") from None


def frame_only(items, context: int) -> np.ndarray:
    """The frame-only observer's event scores (I,) for a Polis item set and a context of
    `context` frames before t* (the model's history in frames)."""
    config = world_config(items)
    if np.any(items.t_star - context < 0):
        raise ProbeError(f"{items.root}: t* leaves fewer than {context} frames of context")
    truth = {k: items.per_item(k) for k in ("partner", "executed", "positions")}
    a, b = items.column("agent_a", int), items.column("agent_b", int)
    actors = np.stack([a, b if not items.meta.get("ego_is_b") else np.full_like(b, -1)], 1)
    scores = frame_only_surprisal(config, truth, items.t_star, context, actors)
    return np.where(items.column("condition") == "teleport", VIOLATION, scores)


def ideal_observer(ideal_surprisal: np.ndarray) -> np.ndarray:
    """The items' exact surprisal as event scores (I,): the ceiling (DESIGN 4.4)."""
    return np.asarray(ideal_surprisal, dtype=np.float64)
