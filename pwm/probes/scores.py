"""From per-frame surprise curves to event scores (DESIGN 4.1), for models and baselines alike.

- Calibration: s~(t) = (s(t) - mu) / sigma with mu, sigma the mean and standard deviation of s
  over every defined frame of held-out *plausible* episodes of the domain: by default the
  plausible items of the item set itself (all their frames t >= H, before and after t*), or a
  `--calib` dataset of natural episodes of the world. It is an affine map per model and domain,
  so rankings (paired accuracy, AUROC, rho) do not depend on it; it puts models and worlds on
  one scale for curves, the heat map and d-like magnitudes.
- Event score: the aggregator (max or mean) of s~ over the window [t*, t* + w]. The raw score
  (same aggregator over s, unstandardised) feeds the relative surprise.
- Curves: s~ aligned on t*, frames t* - before .. t* + after, NaN outside the episode.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from pwm.probes.config import ProbeError


@dataclass(frozen=True)
class Calibration:
    mu: float
    sigma: float
    frames: int
    source: str

    def as_dict(self) -> dict:
        return asdict(self)


def calibrate(curves: np.ndarray, source: str) -> Calibration:
    """mu, sigma of every finite value of `curves` (episodes x frames of plausible episodes)."""
    values = curves[np.isfinite(curves)]
    if len(values) < 2:
        raise ProbeError(f"calibration ({source}) has fewer than 2 frames with a surprise")
    sigma = float(values.std(ddof=1))
    return Calibration(float(values.mean()), sigma if sigma > 0 else 1.0, len(values), source)


def standardise(curves: np.ndarray, cal: Calibration) -> np.ndarray:
    return (curves - cal.mu) / cal.sigma


def check_windows(t_star: np.ndarray, num_frames: int, window: int, context: int, where: str):
    """Every event window [t*, t* + w] must lie in the episode and after the first H frames."""
    late = np.flatnonzero(t_star + window >= num_frames)
    if len(late):
        i = late[0]
        raise ProbeError(
            f"{where}: event window [t*, t* + {window}] = [{t_star[i]}, {t_star[i] + window}] "
            f"leaves the episode of {num_frames} frames (item {i}); lower `window`"
        )
    early = np.flatnonzero(t_star < context)
    if len(early):
        i = early[0]
        raise ProbeError(
            f"{where}: t* = {t_star[i]} (item {i}) is inside the first H = {context} frames, "
            "which have no prediction; lower `context` or use items with a later t*"
        )


def event_scores(curves: np.ndarray, t_star: np.ndarray, window: int, aggregator: str):
    """curves (I, T) per item, t_star (I,) -> (I,) aggregator of curves over [t*, t* + w],
    over the frames that have a surprise (a frame-skip model has none between its steps; t* is
    always one of its steps)."""
    idx = t_star[:, None] + np.arange(window + 1)  # (I, w+1)
    vals = np.take_along_axis(curves, idx, axis=1)  # (I, w+1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window stays NaN
        return np.nanmax(vals, axis=1) if aggregator == "max" else np.nanmean(vals, axis=1)


def aligned(curves: np.ndarray, t_star: np.ndarray, before: int, after: int) -> np.ndarray:
    """curves (I, T) -> (I, before + after + 1): frames t* - before .. t* + after, NaN outside."""
    T = curves.shape[1]
    idx = t_star[:, None] + np.arange(-before, after + 1)  # (I, L)
    ok = (idx >= 0) & (idx < T)
    out = np.take_along_axis(curves, np.clip(idx, 0, T - 1), axis=1)  # (I, L)
    return np.where(ok, out, np.nan)
