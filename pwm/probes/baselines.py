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
"""

from __future__ import annotations

import numpy as np

from pwm.data.format import Dataset

DEFECT = 0  # executed-action code of a defection (data_gen.agents.D)


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


def ideal_observer(ideal_surprisal: np.ndarray) -> np.ndarray:
    """The items' exact surprisal as event scores (I,): the ceiling (DESIGN 4.4)."""
    return np.asarray(ideal_surprisal, dtype=np.float64)
