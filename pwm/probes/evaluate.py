"""Apply the metrics (metrics.py) to one scorer on one item set: the per-scorer results block.

A scorer (the model, a random network, a baseline) is reduced to `Scores`: standardised and raw
event scores per aggregator and, for curve-based scorers, the standardised curves aligned on t*.
`evaluate` then computes, for every comparison of items.json and every aggregator, the paired
accuracy (sum rule for quadruplets) with its bootstrap CI, d_z with CI, mean difference,
relative surprise, Wilcoxon p, unpaired AUROC between the two sides, the chance band and the
pass flag; over all items the AUROC, Spearman rho against the ideal observer (also over the
lawful events alone, where the teleports' sentinel surprisal cannot carry it) and the
teleport-vs-visual-control selectivity (the comparison items.json names `selectivity`); the
time-lock check for prefix-matched comparisons; the dose-response series (comparisons with a
K) and its slope on log2 K; the history effect HE = M2 + R - 1 per group with its CI and chance
band; the betrayal verdict (M1, R, Q) and the world's headline. Random networks only need the
rank-based metrics, which calibration does not change, so `rank_metrics` skips the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pwm.probes import metrics as M
from pwm.probes.config import ProbeError, VoEConfig
from pwm.probes.items import ItemSet, Pairing
from pwm.probes.scores import Calibration, aligned, event_scores, standardise


@dataclass
class Scores:
    event: dict[str, np.ndarray]  # aggregator -> (I,) standardised event scores
    raw: dict[str, np.ndarray]  # aggregator -> (I,) raw event scores
    curves: np.ndarray | None = None  # (I, before + 1 + after) standardised, aligned on t*


def from_curves(curves: np.ndarray, cal: Calibration, t_star: np.ndarray, cfg: VoEConfig):
    """Per-item surprise curves (I, T) -> Scores."""
    std = standardise(curves, cal)
    return Scores(
        event={a: event_scores(std, t_star, cfg.window, a) for a in cfg.aggregators},
        raw={a: event_scores(curves, t_star, cfg.window, a) for a in cfg.aggregators},
        curves=aligned(std, t_star, cfg.curve_before, cfg.curve_after),
    )


def from_event(scores: np.ndarray, cfg: VoEConfig) -> Scores:
    """Event scores that are the same for every aggregator (the ideal observer)."""
    return Scores(
        event=dict.fromkeys(cfg.aggregators, scores), raw=dict.fromkeys(cfg.aggregators, scores)
    )


def check_named_tests(items: ItemSet) -> None:
    """The named tests of items.json must be DESIGN 4.3's, or their verdict would mislead."""
    for comp in items.meta["comparisons"]:
        want = M.POLIS_TESTS.get(comp["name"])
        if want and (sorted(comp["implausible"]), sorted(comp["plausible"])) != tuple(
            sorted(w) for w in want
        ):
            raise ProbeError(f"{items.root}: comparison {comp['name']} is not DESIGN 4.3's {want}")


def sides(pairing: Pairing, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(implausible, plausible) scores per pair, (P,) each, by the sum rule."""
    return M.sum_rule(scores[pairing.implausible], scores[pairing.plausible])


def rank_metrics(items: ItemSet, pairings: list[Pairing], scores: Scores) -> dict:
    """Paired accuracy per comparison and overall AUROC per aggregator (chance networks)."""
    out = {"auroc": {a: M.auroc(s, items.implausible) for a, s in scores.event.items()}}
    for p in pairings:
        out[p.name] = {a: M.paired_accuracy(*sides(p, s)) for a, s in scores.event.items()}
    return out


def _comparison(p: Pairing, s: Scores, agg: str, cfg: VoEConfig, band, seed: int) -> dict:
    imp, pl = sides(p, s.event[agg])
    raw_imp, raw_pl = sides(p, s.raw[agg])
    diff, outcomes = imp - pl, M.pair_outcomes(imp, pl)
    boot = dict(level=cfg.ci_level, resamples=cfg.bootstrap_resamples, seed=seed)
    acc = M.paired_accuracy(imp, pl)
    ci = M.bootstrap_ci(outcomes, **boot)
    both = np.concatenate([s.event[agg][p.implausible].ravel(), s.event[agg][p.plausible].ravel()])
    labels = np.arange(len(both)) < p.implausible.size
    return {
        "paired_accuracy": acc,
        "ci": list(ci),
        "d_z": M.paired_dz(diff) if len(diff) > 1 else float("nan"),
        "d_z_ci": list(M.bootstrap_ci(diff, M.paired_dz, **boot)) if len(diff) > 1 else None,
        "mean_diff": float(diff.mean()) if len(diff) else float("nan"),
        "relative_surprise": M.relative_surprise(raw_imp, raw_pl),
        "wilcoxon_p": M.wilcoxon_p(diff),
        "auroc": M.auroc(both, labels),
        "chance_band": list(band) if band is not None else None,
        "pass": M.passes(acc, ci[0], band[1] if band is not None else None),
        "outcomes": outcomes.tolist(),
    }


def evaluate(
    items: ItemSet,
    pairings: list[Pairing],
    scores: Scores,
    cfg: VoEConfig,
    chance: dict | None = None,
    prefix_matched: dict[str, bool] | None = None,
) -> dict:
    """The results block of one scorer; `chance` is {comparison or 'auroc': {agg: [values]}}."""
    ideal = items.column("ideal_surprisal", float)
    band = lambda key, a: M.chance_band(chance[key][a], cfg.ci_level) if chance else None  # noqa: E731
    out = {"auroc": {}, "auroc_chance_band": {}, "spearman_ideal": {},
           "spearman_ideal_lawful": {}, "comparisons": {}}  # fmt: skip
    for a, s in scores.event.items():
        out["auroc"][a] = M.auroc(s, items.implausible)
        out["auroc_chance_band"][a] = list(band("auroc", a)) if chance else None
        rho, pv = M.spearman(s, ideal)
        out["spearman_ideal"][a] = {"rho": rho, "p": pv}
        rho, pv = M.spearman_lawful(s, ideal)
        out["spearman_ideal_lawful"][a] = {"rho": rho, "p": pv}
    for i, p in enumerate(pairings):
        res = {
            "n_pairs": len(p.groups),
            "K": p.K,
            "prefix_matched": (prefix_matched or {}).get(p.name),
        }
        for a in cfg.aggregators:
            res[a] = _comparison(p, scores, a, cfg, band(p.name, a), cfg.seed + i)
        out["comparisons"][p.name] = res
    if scores.curves is not None:
        out["time_lock"] = {
            p.name: M.time_lock(
                scores.curves[p.implausible].sum(1) - scores.curves[p.plausible].sum(1),
                cfg.curve_before,
                cfg.time_lock_tolerance,
            )
            for p in pairings
            if (prefix_matched or {}).get(p.name)
        }
    sel = [p for p in pairings if p.name == "selectivity"]
    if sel:
        out["selectivity"] = {a: M.selectivity(*sides(sel[0], s)) for a, s in scores.event.items()}
    out["dose_response"] = dose_response(pairings, out["comparisons"], cfg)
    out["dose_slope"] = {a: slope(pairings, s, cfg) for a, s in scores.event.items()}
    for key, tests in HISTORY_EFFECTS.items():
        he = history_effect(pairings, out["comparisons"], cfg, chance, tests)
        if he:
            out[key] = he
    comps = out["comparisons"]
    if all(t in comps for t in cfg.betrayal_tests):
        passed = {t: comps[t][cfg.primary]["pass"] for t in cfg.betrayal_tests}
        out["verdict"] = M.betrayal_verdict(passed, cfg.betrayal_tests)
    heads = [
        comps[c][cfg.primary]["paired_accuracy"]
        for c in cfg.headline.get(items.world, [])
        if c in comps
    ]
    out["headline"] = float(np.mean(heads)) if heads else None
    return out


# the two estimates of the history x outcome interaction (metrics.history_effect): M2 and R pair
# items of one history and score its two outcomes (a scorer's outcome preference cancels); M1
# and M1C pair items of one outcome and score its two histories (a history preference cancels)
HISTORY_EFFECTS = {"history_effect": ("M2", "R"), "history_effect_m1": ("M1", "M1C")}


def history_effect(
    pairings: list[Pairing], comps: dict, cfg: VoEConfig, chance, tests=("M2", "R")
) -> dict:
    """{agg: HE block} from the pair outcomes of `tests` (two comparisons) in the groups that
    have both; {} if the items lack one. HE = M2 + R - 1 (or M1 + M1C - 1); the chance band is
    that of the same sum over the random networks."""
    by = {p.name: p for p in pairings}
    first, second = tests
    if first not in by or second not in by:
        return {}
    common, i_1, i_2 = np.intersect1d(by[first].groups, by[second].groups, return_indices=True)
    out = {}
    for a in cfg.aggregators:
        o_1 = np.asarray(comps[first][a]["outcomes"])[i_1]
        o_2 = np.asarray(comps[second][a]["outcomes"])[i_2]
        he = M.history_effect(o_1, o_2)  # (G,)
        ci = M.bootstrap_ci(he, level=cfg.ci_level, resamples=cfg.bootstrap_resamples,
                            seed=cfg.seed)  # fmt: skip
        band = None
        if chance and first in chance and second in chance:
            values = np.asarray(chance[first][a]) + np.asarray(chance[second][a]) - 1
            band = list(M.chance_band(values, cfg.ci_level))
        value = float(he.mean()) if len(he) else float("nan")
        out[a] = {"value": value, "ci": list(ci), "n_groups": len(common), "chance_band": band,
                  "pass": M.passes(value, ci[0], band[1] if band else None, null=0.0),
                  "outcomes": he.tolist()}  # fmt: skip
    return out


def slope(pairings: list[Pairing], event: np.ndarray, cfg: VoEConfig) -> dict | None:
    """The dose-response slope (metrics.dose_slope) of the betrayal-minus-trust event score over
    the M2_K{k} comparisons present (the pipeline keeps only the K inside the context)."""
    rows = [p for p in pairings if p.K is not None and p.name == f"M2_K{p.K}" and len(p.groups)]
    if not rows:
        return None
    k = np.concatenate([np.full(len(p.groups), p.K) for p in rows])
    diff = np.concatenate([event[p.implausible[:, 0]] - event[p.plausible[:, 0]] for p in rows])
    return M.dose_slope(k, diff, cfg.ci_level, cfg.bootstrap_resamples, cfg.seed)


def dose_response(pairings: list[Pairing], comps: dict, cfg: VoEConfig) -> dict:
    """{base comparison: {agg: {K, paired_accuracy, ci, n_pairs}}} from the K-restricted ones."""
    out = {}
    for p in sorted((p for p in pairings if p.K is not None), key=lambda p: p.K):
        base = p.name.rsplit("_K", 1)[0]
        for a in cfg.aggregators:
            row = out.setdefault(base, {}).setdefault(
                a, {"K": [], "paired_accuracy": [], "ci": [], "n_pairs": []}
            )
            row["K"].append(p.K)
            row["paired_accuracy"].append(comps[p.name][a]["paired_accuracy"])
            row["ci"].append(comps[p.name][a]["ci"])
            row["n_pairs"].append(comps[p.name]["n_pairs"])
    return out


def condition_curves(items: ItemSet, curves: np.ndarray) -> dict:
    """Mean and standard error of the aligned curves (I, L) per condition."""
    cond = items.column("condition")
    out = {}
    for c in items.conditions:
        x = curves[cond == c]
        n = np.isfinite(x).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(x, 0) / np.maximum(n, 1)
            se = np.sqrt(np.nansum((x - mean) ** 2, 0) / np.maximum(n - 1, 1)) / np.sqrt(
                np.maximum(n, 1)
            )
        out[c] = {
            "mean": np.where(n > 0, mean, np.nan).tolist(),
            "se": np.where(n > 1, se, np.nan).tolist(),
        }
    return out
