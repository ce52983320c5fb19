"""Every VoE metric (DESIGN 4.3), as plain functions on arrays of event scores.

The same functions score every model, every baseline and both worlds. Scores are "higher = more
surprising"; a pair is (implausible, plausible) from the same group. Choices: ties count 0.5
everywhere, and two scores within a relative `TIE_RTOL` (1e-6, a few float32 ulps) are a tie;
CIs are percentile bootstraps (scipy) over pairs, or hierarchical over training seeds
then pairs; the chance band is the central `level` quantile interval of the metric over randomly
initialised networks; a comparison *passes* when its CI lower bound is above 0.5 and the value is
above the chance band.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

# The named Polis tests (DESIGN 4.3): (implausible conditions, plausible conditions).
POLIS_TESTS = {
    # identical prefix: is a defection in a trusting pair flagged at all?
    "M2": (["trust_D"], ["trust_C"]),
    # identical prefix: is retaliation expected? "defection is rare" scores below 0.5 here
    "R": (["provoked_C"], ["provoked_D"]),
    # identical outcome frames, histories one action apart: "any defection" scores 0.5 here
    "M1": (["trust_D"], ["provoked_D"]),
    # the quadruplet: the sum rule cancels how rare each cue is
    "Q": (["trust_D", "provoked_C"], ["trust_C", "provoked_D"]),
    # M1's mirror: the same two histories, A cooperates (DESIGN 4.2: shows B's part in M1 when
    # B acts by itself; with B the ego, B's action is an input and M1C is a second law test)
    "M1C": (["provoked_C"], ["trust_C"]),
}


# Two scores closer than this, relative to the larger, are a tie: float32 rounding is 6e-8
# relative, and the same surprise computed in another batch, thread count or BLAS differs in its
# last bits (BENCH.md: a ViT's embedding of a frame depends on the batch it is encoded in).
TIE_RTOL = 1e-6


def pair_outcomes(imp: np.ndarray, pl: np.ndarray, rtol: float = TIE_RTOL) -> np.ndarray:
    """Per pair: 1 if the implausible score is higher, 0.5 on a tie, 0 otherwise, (P,).

    A tie is equality or a difference within `rtol` of the larger magnitude.
    Why: a VoE judgement is a forced choice between two versions of one scene; counting ties as
    half keeps a detector that cannot tell them apart (equal scores) exactly at chance, and the
    tolerance keeps a pair whose two sides hold the same scores from being decided by the last
    bits of a float sum (which moved a pixel model's Q by 0.02 between two probe passes whose
    surprises differed by 7.5e-9).
    """
    imp, pl = np.asarray(imp, dtype=float), np.asarray(pl, dtype=float)
    with np.errstate(invalid="ignore"):  # inf - inf: equal infinities are caught by ==
        near = np.abs(imp - pl) <= rtol * np.maximum(np.abs(imp), np.abs(pl))
        tie = (imp == pl) | (near & np.isfinite(imp) & np.isfinite(pl))
    return np.where(tie, 0.5, np.where(imp > pl, 1.0, 0.0))


def paired_accuracy(imp: np.ndarray, pl: np.ndarray) -> float:
    """Fraction of pairs whose implausible item scores higher (ties 0.5); NaN without pairs.

    Why: pairs share their base scene, so everything but the manipulated event cancels; it is
    the looking-time test of infant VoE studies, free of any threshold or score scale.
    """
    return float(pair_outcomes(imp, pl).mean()) if len(imp) else float("nan")


def sum_rule(imp: np.ndarray, pl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quadruplets (P, 2) per side -> summed scores (P,), (P,).

    Why: {trust_D, provoked_C} vs {trust_C, provoked_D} shows each outcome cue (C and D) and
    each history once per side, so a score driven by how rare a cue or a history is cancels in
    the sums; only the contingency (history x outcome) can make the implausible sum higher.
    """
    return imp.sum(axis=1), pl.sum(axis=1)


def auroc(scores: np.ndarray, implausible: np.ndarray) -> float:
    """Area under the ROC curve of implausible vs plausible items, unpaired (ties 0.5).

    Why: it asks whether the score separates the labels across scenes, not only within a pair;
    computed as the Mann-Whitney U / (n_imp n_pl) from mid-ranks, which gives ties 0.5.
    """
    pos, neg = int(implausible.sum()), int((~implausible).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[implausible].sum() - pos * (pos + 1) / 2) / (pos * neg))


def paired_dz(diff: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Cohen's d_z: mean / standard deviation (ddof 1) of the paired differences.

    Why: the effect size of a within-pair design, in units of its own noise; unlike accuracy
    it grows with the margin, and unlike raw differences it compares models with different
    score scales. Zero spread gives 0 for zero mean and +-inf otherwise.
    """
    m = np.mean(diff, axis=axis)
    s = np.std(diff, axis=axis, ddof=1) if np.shape(diff)[axis] > 1 else np.zeros_like(m)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(s > 0, m / np.where(s > 0, s, 1), np.sign(m) * np.inf)
    out = np.where((s == 0) & (m == 0), 0.0, out)
    return float(out) if np.ndim(out) == 0 else out


def relative_surprise(imp_raw: np.ndarray, pl_raw: np.ndarray) -> float:
    """Mean over pairs of (S_imp - S_pl) / (S_imp + S_pl) on raw (unstandardised) scores.

    Why: a scale-free fraction in [-1, 1] comparable across models without calibration
    (pairs whose two scores are both 0 count 0).
    """
    if len(imp_raw) == 0:
        return float("nan")
    den = imp_raw + pl_raw
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(den != 0, (imp_raw - pl_raw) / np.where(den != 0, den, 1), 0.0)
    return float(rel.mean())


def wilcoxon_p(diff: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the paired differences (zeros split).

    Why: no normality assumption for score differences, which are heavy-tailed; 1.0 when
    every difference is zero or there are fewer than 2 pairs.
    """
    if len(diff) < 2 or np.all(diff == 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.wilcoxon(diff, zero_method="zsplit").pvalue)


def bootstrap_ci(
    values: np.ndarray, statistic=np.mean, level: float = 0.95, resamples: int = 2000, seed=0
) -> tuple[float, float]:
    """Percentile bootstrap CI of `statistic(values, axis=-1)` over resampled items (pairs).

    Why: pairs are the independent units (one per base scene); the percentile bootstrap makes
    no distributional assumption and stays defined for bounded, tied metrics like accuracy.
    """
    values = np.asarray(values, dtype=float)
    if len(values) < 2 or np.all(values == values[0]):
        v = float(statistic(values, axis=-1)) if len(values) else float("nan")
        return v, v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (values,),
            statistic,
            confidence_level=level,
            n_resamples=resamples,
            method="percentile",
            random_state=np.random.default_rng(seed),
            axis=-1,
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def seed_bootstrap_ci(
    per_seed: list[np.ndarray], level: float = 0.95, resamples: int = 2000, seed=0
) -> tuple[float, float]:
    """Hierarchical bootstrap CI of the mean over training seeds of per-seed pair means.

    Why: two sources of variance — which network training produced, and which items were
    drawn; resampling seeds, then pairs within each drawn seed, covers both (a single seed
    falls back to the item bootstrap).
    """
    per_seed = [np.asarray(v, dtype=float) for v in per_seed if len(v)]
    if not per_seed:
        return float("nan"), float("nan")
    if len(per_seed) == 1:
        return bootstrap_ci(per_seed[0], level=level, resamples=resamples, seed=seed)
    rng = np.random.default_rng(seed)
    means = np.stack(
        [v[rng.integers(0, len(v), (resamples, len(v)))].mean(axis=1) for v in per_seed]
    )  # (S, R)
    pick = rng.integers(0, len(per_seed), (resamples, len(per_seed)))  # (R, S)
    boot = means[pick, np.arange(resamples)[:, None]].mean(axis=1)  # (R,)
    a = (1 - level) / 2
    return float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a))


def history_effect(m2_outcomes: np.ndarray, r_outcomes: np.ndarray) -> np.ndarray:
    """Per group: HE = o_M2 + o_R - 1 from the group's M2 and R pair outcomes (0, 0.5 or 1).

    Why: R and M2 score the same two outcome frames (provoked_C / trust_C show A cooperating,
    provoked_D / trust_D defecting) with swapped labels, so any scorer that ignores the history
    gets o_R = 1 - o_M2 and HE = 0, whatever it thinks of defection; only a history that
    changes the surprise of an outcome moves HE, up to 1 for an observer that reads it
    (DESIGN 4.3). Its mean over groups is M2 + R - 1. The same function on M1's and M1C's
    outcomes gives M1 + M1C - 1, the interaction seen from the other side: M1 and M1C score the
    same two histories with swapped labels, so a scorer that finds one history more surprising
    whatever follows (a history main effect, which decides M1 alone) gets 0 there.
    """
    return np.asarray(m2_outcomes, dtype=float) + np.asarray(r_outcomes, dtype=float) - 1.0


def dose_slope(
    k: np.ndarray, diff: np.ndarray, level: float = 0.95, resamples: int = 2000, seed=0
) -> dict:
    """Least-squares slope of the betrayal-minus-trust score difference on log2 K, with a
    percentile bootstrap CI over groups; per-K means and counts, and the differences themselves
    ordered by K ("diff", for a CI over training seeds: seed_bootstrap_slope_ci).

    Why: a model that reads the history should find a betrayal more surprising the longer the
    trust it breaks (DESIGN 4.2's dose-response); the slope summarises the dose in one number
    whose CI says whether it rises at all. log2 K spaces the doses 1, 2, 4, 8 evenly; only the K
    inside the model's context are given (outside it no model can see the dose).
    """
    k, y = np.asarray(k), np.asarray(diff, dtype=float)
    x = np.log2(k.astype(float))
    ks = sorted(set(k.tolist()))
    by_k = y[np.argsort(k, kind="stable")]  # stored by K, so "diff" splits by the counts "n"
    out = {"K": ks, "mean_diff": [float(y[k == v].mean()) for v in ks],
           "n": [int((k == v).sum()) for v in ks],
           "diff": [float(f"{v:.6g}") for v in by_k]}  # fmt: skip
    if len(ks) < 2:
        return {**out, "slope": float("nan"), "ci": [float("nan"), float("nan")]}
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(x), (resamples, len(x)))  # (R, n) resampled groups
    boot = _slope(x[pick], y[pick])
    a = (1 - level) / 2
    ci = [float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a))]
    return {**out, "slope": float(_slope(x[None], y[None])[0]), "ci": ci}


def _slope(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Least-squares slopes of rows: (R, n) each -> (R,) (0 where x does not vary)."""
    xc = xx - xx.mean(-1, keepdims=True)
    den = (xc * xc).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (xc * (yy - yy.mean(-1, keepdims=True))).sum(-1) / den, 0.0)


def seed_bootstrap_slope_ci(
    per_seed: list[dict], level: float = 0.95, resamples: int = 2000, seed=0
) -> tuple[float, float]:
    """Hierarchical bootstrap CI of the mean over training seeds of the dose-response slope:
    `per_seed` holds each seed's `dose_slope` output (its rows: "K", "n", "diff").

    Why: the same two sources of variance as `seed_bootstrap_ci` (which network, which items),
    so the slope of a model trained at several seeds gets the CI the other tests get: resample
    seeds, then each drawn seed's groups, and average the seeds' slopes. One seed gives that
    seed's stored group bootstrap CI (dose_slope's, at the level and resamples it was probed
    with). Seeds probed before "diff" was stored, or with fewer than two K, are left out (nan
    when none is left).
    """
    kept = [d for d in per_seed if d and "diff" in d and len(d["K"]) > 1]
    if not kept:
        return float("nan"), float("nan")
    if len(kept) == 1:
        return tuple(kept[0]["ci"])
    rng = np.random.default_rng(seed)
    slopes = []  # (S, R): each seed's slope over R resamples of its groups
    for d in kept:
        x = np.log2(np.repeat(np.asarray(d["K"], dtype=float), d["n"]))
        y = np.asarray(d["diff"], dtype=float)
        pick = rng.integers(0, len(x), (resamples, len(x)))
        slopes.append(_slope(x[pick], y[pick]))
    slopes = np.stack(slopes)
    pick = rng.integers(0, len(kept), (resamples, len(kept)))  # (R, S)
    boot = slopes[pick, np.arange(resamples)[:, None]].mean(axis=1)  # (R,)
    a = (1 - level) / 2
    return float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a))


def spearman(scores: np.ndarray, ideal: np.ndarray) -> tuple[float, float]:
    """Spearman rho (and p) between event scores and the ideal observer's surprisal.

    Why: graded calibration — a model that tracks how improbable an event is, not only whether
    it is, ranks items like the ideal observer; ranks ignore the scale (and the 1e9 sentinel).
    """
    if len(scores) < 3 or np.all(scores == scores[0]) or np.all(ideal == ideal[0]):
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.spearmanr(scores, ideal)
    return float(res.statistic), float(res.pvalue)


VIOLATION = 1e9  # the ideal surprisal both item generators store for events of probability 0


def spearman_lawful(scores: np.ndarray, ideal: np.ndarray) -> tuple[float, float]:
    """Spearman rho (and p) over the lawful events only (ideal surprisal below VIOLATION).

    Why: over all items, law violations (teleports: surprisal VIOLATION) dominate the ranks, so a
    model that flags only teleports correlates with the ideal observer; among lawful events the
    ideal observer ranks how improbable each choice was, the graded social expectation itself.
    """
    lawful = np.asarray(ideal) < VIOLATION
    return spearman(np.asarray(scores)[lawful], np.asarray(ideal)[lawful])


def chance_band(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Central `level` quantile interval of a metric over randomly initialised networks.

    Why: an untrained network of the same architecture already reacts to pixel changes; the
    band is what the architecture gives without learning, so "above chance" means learned.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    return float(np.quantile(values, a)), float(np.quantile(values, 1 - a))


def time_lock(diff: np.ndarray, before: int, tolerance: float) -> dict:
    """Time-lock check of paired difference curves aligned on t*, (P, before + 1 + after).

    Why: with identical prefixes nothing differs before t*, so a difference there would be an
    artefact (leakage, nondeterminism); after t* the latency of the mean difference's peak says
    when the model notices (0: at the event frame). Returns the largest |difference| before t*,
    whether it is within tolerance, and the peak latency in frames.
    """
    pre, post = diff[:, :before], diff[:, before:]
    pre_max = float(np.nanmax(np.abs(pre))) if np.isfinite(pre).any() else float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean_post = np.nanmean(post, axis=0)  # (after + 1,)
    latency = int(np.nanargmax(mean_post)) if np.isfinite(mean_post).any() else None
    locked = bool(pre_max <= tolerance) if np.isfinite(pre_max) else None
    return {"pre_max_abs": pre_max, "locked": locked, "peak_latency": latency}


def selectivity(violation: np.ndarray, visual: np.ndarray) -> float:
    """Paired accuracy of a dynamics violation (teleport) against the visual control.

    Why: both change the same disc's pixels at t*, but only the teleport breaks a law; a
    detector of visual change scores ~0.5 (or less: a recolour can change more pixels), a model
    of the dynamics scores ~1.
    """
    return paired_accuracy(violation, visual)


def passes(accuracy: float, ci_low: float, band_high: float | None, null: float = 0.5) -> bool:
    """A comparison passes when the CI excludes the null (0.5 for an accuracy, 0 for the history
    effect) from above and the value beats the chance band."""
    if not np.isfinite(accuracy) or not np.isfinite(ci_low):
        return False
    above_band = band_high is None or not np.isfinite(band_high) or accuracy > band_high
    return bool(ci_low > null and above_band)


def betrayal_verdict(passed: dict[str, bool], tests=("M1", "R", "Q")) -> dict:
    """Betrayal VoE is claimed only if every one of `tests` (M1, R and Q) passes.

    Why: M2 alone is passed by "defection is rare"; R and M1 fail that model, and Q removes
    cue rarity; only a model of the contingency passes all three (DESIGN 4.3).
    """
    result = {t: passed.get(t) for t in tests}
    return {"claimed": all(v is True for v in result.values()), "tests": result}
