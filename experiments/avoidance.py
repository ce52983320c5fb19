"""Delayed avoidance after a betrayal in a Polis training set: how large, how rare, how predictable.

    python experiments/avoidance.py DATASET [--shards N] [--json OUT]

Why: a world model's one-step prediction misses the partner's move away 3 rounds after a
betrayal. Polis moves agents by the trust of `react_delay` rounds ago (data_gen/polis.py), so
when i defects on a cooperating j at round r, j's trust in i collapses at once, but j only moves
away from i from round r + react_delay on (react_delay 2: between d(r+2) and d(r+3)). This tool
measures, in the training data, how large that onset is, how rare its cause is, and how
predictable it is from what a model can see.

Everything is at the round level: round r's exchange frame is t = round_len (r + 1), d(r) the
i-j centre distance there. Rows are ordered exchanging pairs (i, j) at round r (i: the actor,
j: its partner); a betrayal is i D, j C; unprovoked when i's D is an `unprovoked_defection`
(agents.EVENTS), which collapses j's trust in i.

1. Per episode (all rounds): pair exchanges, mutual cooperations, betrayals (per ordered pair),
   unprovoked ones, and unprovoked ones by the ego (agent 0).
2. The per-round change of the distance, d(r+s+1) - d(r+s) for s = -2..4 (s < 0: pre-event
   checks), betrayal minus control, mean ± SE, for (a) every unprovoked betrayal against one row
   per unordered mutual-C pair, and (b) the tremble set, unprovoked betrayals where i intended C
   and trembled to D (an as-if random betrayal), against ordered mutual-C rows where i intended
   C; with each control's SD (the noise a prediction of the onset has to beat). The tremble set
   at s = 2 is also split by the victim j's disposition.
3. j's radial velocity away from i (the state's vx, vy) at the exchange frames of r+0..r+5,
   tremble set minus its control.
4. Held-out R^2 (50 % split, seed 0) of a least-squares prediction of d(r+3) - d(r+2), over one
   row per unordered exchanging pair at r (r >= 1), from (a) the movement history (d at r, r+1,
   r+2, d(r+2)^2, the pair's rate of separation from vx, vy at the frames of r+1 and r+2),
   (b) (a) + round r's outcome (one-sided D, mutual D), (c) (b) + whether the one-sided D was
   unprovoked, (d) (b) + the hidden trust T[j, i], T[i, j] after round r (a reference the data
   does not show).

Rows need the whole window, frames t - 2 round_len .. t + 5 round_len (the first round's
t - 2 round_len lies before the episode: its pre-event change is left out). Bad input (not a
Polis dataset, a missing array, --shards < 1, episodes too short) is one line on stderr, exit
2, nothing written.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import dataset_tool
import numpy as np

from data_gen.agents import DISPOSITIONS, EVENTS, C, D  # C, D: the action codes
from pwm.data.format import Dataset, open_dataset

BEFORE, HORIZON = 2, 5  # rounds of window before r; rounds after it (s = 0..HORIZON-1)
STEPS = list(range(-BEFORE, HORIZON))  # s of d(r+s+1) - d(r+s)
ONSET = 2  # s of the disposition split and of the predicted change, d(r+3) - d(r+2)
SEED = 0  # of the held-out split
ARRAYS = ("positions", "executed", "intended", "partner", "event", "trust", "dispositions", "state")


class AvoidanceError(Exception):
    """Bad input: one line for the user."""


def load(ds: Dataset, shards: int | None) -> dict[str, np.ndarray]:
    """The arrays the analysis needs, of the first `shards` shards (all if None), by episode."""
    if ds.world != "polis":
        raise AvoidanceError(f"{ds.root} is a {ds.world} dataset, not polis")
    missing = [a for a in ARRAYS if a not in ds.manifest["arrays"]]
    if missing:
        raise AvoidanceError(f"{ds.root} has no array {', '.join(missing)} (not a Polis dataset?)")
    layout = ds.manifest.get("state_layout", [])
    if "vx" not in layout or "vy" not in layout:
        raise AvoidanceError(f"{ds.root}: the state layout {layout} has no vx, vy")
    out = {k: np.concatenate([np.asarray(a) for a in ds.shards(k)[:shards]]) for k in ARRAYS}
    e, t = out["executed"].shape[:2]
    out["state"] = out["state"].reshape(e, t, out["executed"].shape[2], len(layout))
    out["velocity"] = out["state"][..., [layout.index("vx"), layout.index("vy")]]
    return out


def exchanges(a: dict[str, np.ndarray], round_len: int) -> dict[str, np.ndarray]:
    """Per (episode, round, agent i) at every exchange frame: partner j, both moves, i's event."""
    frames = a["executed"].shape[1]
    ts = round_len * (np.arange((frames - 1) // round_len) + 1)  # exchange frames
    j = a["partner"][:, ts].astype(np.int64)  # (E, R, N), -1 none
    jc = np.maximum(j, 0)
    ai = a["executed"][:, ts]
    aj = np.take_along_axis(ai, jc, axis=2)
    return {
        "ts": ts,
        "j": j,
        "ai": ai,
        "aj": aj,
        "ii": a["intended"][:, ts],
        "evi": a["event"][:, ts],
        "evj": np.take_along_axis(a["event"][:, ts], jc, axis=2),
    }


def episode_counts(x: dict[str, np.ndarray], unprovoked: int) -> dict[str, float]:
    """Means over episodes of the exchange counts (all rounds; betrayals per ordered pair)."""
    n = x["j"].shape[2]
    paired = x["j"] >= 0
    once = paired & (np.arange(n) < x["j"])  # one entry per unordered pair exchange
    betrayal = paired & (x["ai"] == D) & (x["aj"] == C)
    unprov = betrayal & (x["evi"] == unprovoked)
    per = {
        "exchanges": once.sum((1, 2)),
        "mutual_c": (once & (x["ai"] == C) & (x["aj"] == C)).sum((1, 2)),
        "betrayals": betrayal.sum((1, 2)),
        "unprovoked": unprov.sum((1, 2)),
        "ego_unprovoked": unprov[:, :, 0].sum(1),
    }
    out = {k: float(v.mean()) for k, v in per.items()}
    out["betrayals_sd"] = float(per["betrayals"].std())
    total = max(int(per["exchanges"].sum()), 1)
    for k in ("betrayals", "unprovoked", "mutual_c"):
        out[f"fraction_{k}"] = float(per[k].sum()) / total
    pair_rounds = n * (n - 1) // 2 * x["j"].shape[1]
    out["unprovoked_per_pair_round"] = out["unprovoked"] / pair_rounds
    return out


def pair_rows(a: dict[str, np.ndarray], x: dict[str, np.ndarray], round_len: int) -> dict:
    """One row per ordered exchanging pair (i, j) at a round r with the whole window after it, in
    (episode, round, i) order: flags, distances and radial velocities over the window."""
    frames = a["positions"].shape[1]
    full = x["ts"] + HORIZON * round_len <= frames - 1
    e, r, i = np.nonzero((x["j"] >= 0) & full[None, :, None])
    j, t = x["j"][e, r, i], x["ts"][r]
    fr = t[:, None] + np.arange(-BEFORE * round_len, HORIZON * round_len + 1)  # (n, W)
    ee, frc = e[:, None], np.maximum(fr, 0)
    pos = a["positions"]
    rel = pos[ee, frc, j[:, None]].astype(np.float64) - pos[ee, frc, i[:, None]]
    dist = np.linalg.norm(rel, axis=-1)
    dist[fr < 0] = np.nan
    unit = rel / np.maximum(dist, 1e-9)[..., None]  # from i to j
    vel = a["velocity"]
    return {
        "e": e,
        "r": r,
        "i": i,
        "j": j,
        "ai": x["ai"][e, r, i],
        "aj": x["aj"][e, r, i],
        "ii": x["ii"][e, r, i],
        "evi": x["evi"][e, r, i],
        "evj": x["evj"][e, r, i],
        "dj": a["dispositions"][e, j],
        "dist": dist,
        "vj": (vel[ee, frc, j[:, None]] * unit).sum(-1),  # j away from i
        "vi": -(vel[ee, frc, i[:, None]] * unit).sum(-1),  # i away from j
        "tji": a["trust"][e, t, j, i].astype(np.float64),  # j's trust in i after round r
        "tij": a["trust"][e, t, i, j].astype(np.float64),
    }


@contextlib.contextmanager
def quiet():
    """No warnings for empty or all-nan columns: their statistics are nan, as reported."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def mean_diff(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise nanmean(a) - nanmean(b) and its standard error (nan where a column has < 2)."""
    with quiet():
        na, nb = (~np.isnan(a)).sum(0), (~np.isnan(b)).sum(0)
        m = np.nanmean(a, 0) - np.nanmean(b, 0)
        se = np.sqrt(np.nanvar(a, 0, ddof=1) / na + np.nanvar(b, 0, ddof=1) / nb)
    return m, se


def held_out_r2(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """R^2 on a seeded random half of the rows of a least-squares fit on the other half."""
    idx = np.random.default_rng(SEED).permutation(len(y))
    fit, test = idx[: len(y) // 2], idx[len(y) // 2 :]
    w = np.linalg.lstsq(x[fit], y[fit], rcond=None)[0]
    res = y[test] - x[test] @ w
    return float(1 - res.var() / y[test].var()), w


def analyse(rows: dict, unprovoked: int, dispositions: list[str], round_len: int) -> dict:
    """Parts 2-4 of the module docstring from `pair_rows`."""
    L = round_len
    dr = rows["dist"][:, BEFORE * L + L * np.arange(-BEFORE, HORIZON + 1)]  # d(r-2) .. d(r+5)
    step = np.diff(dr, axis=1)  # step[:, k] = d(r+s+1) - d(r+s), s = STEPS[k]
    ai, aj = rows["ai"], rows["aj"]
    betrayal = (ai == D) & (aj == C)
    unprov = betrayal & (rows["evi"] == unprovoked)
    mutual = (ai == C) & (aj == C)
    sets = {  # name -> (betrayal rows, control rows)
        "unprovoked": (unprov, mutual & (rows["i"] < rows["j"])),
        "tremble": (unprov & (rows["ii"] == C), mutual & (rows["ii"] == C)),
    }
    out = {
        "rows": {
            "betrayal": int(betrayal.sum()),
            "unprovoked": int(unprov.sum()),
            "tremble": int(sets["tremble"][0].sum()),
            "mutual_c_pairs": int(sets["unprovoked"][1].sum()),
            "tremble_control": int(sets["tremble"][1].sum()),
        },
        "steps": STEPS,
        "distance_change": {},
    }
    for name, (sel, ctrl) in sets.items():
        m, se = mean_diff(step[sel], step[ctrl])
        with quiet():
            mean, sd = np.nanmean(step[ctrl], 0), np.nanstd(step[ctrl], 0)
            ratio = m / sd
        out["distance_change"][name] = {
            "n": int(sel.sum()),
            "n_control": int(ctrl.sum()),
            "diff": m,
            "se": se,
            "control_mean": mean,
            "control_sd": sd,
            "effect_over_control_sd": ratio,
        }
    trem, ctrl = sets["tremble"]
    k = STEPS.index(ONSET)
    out["tremble_by_victim"] = {}
    for code, name in enumerate(dispositions):
        sel = trem & (rows["dj"] == code)
        m, se = mean_diff(step[sel][:, k : k + 1], step[ctrl][:, k : k + 1])
        out["tremble_by_victim"][name] = {"n": int(sel.sum()), "diff": m[0], "se": se[0]}
    at = BEFORE * L + L * np.arange(HORIZON + 1)  # exchange frames of r+0 .. r+5
    m, se = mean_diff(rows["vj"][trem][:, at], rows["vj"][ctrl][:, at])
    out["radial_velocity_tremble"] = {"rounds": list(range(HORIZON + 1)), "diff": m, "se": se}
    out["predictability"] = predictability(rows, dr, step, unprovoked, L)
    return out


def predictability(
    rows: dict, dr: np.ndarray, step: np.ndarray, unprovoked: int, round_len: int
) -> dict:
    """Part 4: held-out R^2 of d(r+3) - d(r+2) from history, outcome, unprovoked flag, trust."""
    ok = (rows["i"] < rows["j"]) & ~np.isnan(dr[:, 0])
    if ok.sum() < 4:
        return {"n": int(ok.sum())}
    ai, aj = rows["ai"][ok], rows["aj"][ok]
    y = step[ok, STEPS.index(ONSET)]
    d0, d1, d2 = (dr[ok, BEFORE + s] for s in range(3))  # d(r), d(r+1), d(r+2)
    sep = (rows["vi"] + rows["vj"])[ok]  # rate of separation at each frame of the window
    v1, v2 = (sep[:, (BEFORE + s) * round_len] for s in (1, 2))  # at the frames of r+1, r+2
    # d's changes d(r+1) - d(r), d(r+2) - d(r+1) are in the span of d0, d1, d2: left out, they
    # would only make the least squares rank-deficient (same fit, same R^2).
    history = [np.ones(len(y)), d0, d1, d2, v2, v1, d2**2]
    one_sided = ((ai == D) & (aj == C)) | ((ai == C) & (aj == D))
    unprov = ((ai == D) & (aj == C) & (rows["evi"][ok] == unprovoked)) | (
        (ai == C) & (aj == D) & (rows["evj"][ok] == unprovoked)
    )
    outcome = [one_sided.astype(float), ((ai == D) & (aj == D)).astype(float)]
    tji, tij = rows["tji"][ok], rows["tij"][ok]
    trust = [tji - 0.5, tij - 0.5, np.minimum(tji, 0.5), np.minimum(tij, 0.5)]
    models = {
        "history": history,
        "outcome": history + outcome,
        "unprovoked": history + outcome + [unprov.astype(float)],
        "trust": history + outcome + trust,
    }
    r2, coef = {}, {}
    for name, cols in models.items():
        r2[name], w = held_out_r2(np.stack(cols, 1), y)
        coef[name] = w[len(history) :]
    return {
        "n": int(ok.sum()),
        "sd_y": float(y.std()),
        "one_sided_fraction": float(one_sided.mean()),
        "r2": r2,
        "coef": {
            "one_sided_d": float(coef["outcome"][0]),
            "mutual_d": float(coef["outcome"][1]),
            "unprovoked": float(coef["unprovoked"][2]),
        },
    }


def avoidance(ds: Dataset, shards: int | None = None) -> dict:
    """Every number of the module docstring, for the first `shards` shards of a Polis dataset."""
    if shards is not None and shards < 1:
        raise AvoidanceError(f"--shards must be >= 1, got {shards}")
    a = load(ds, shards)
    round_len = ds.manifest.get("config", {}).get("round_len")
    if not isinstance(round_len, int) or round_len < 1:
        raise AvoidanceError(f"{ds.root}: the manifest's config has no round_len")
    frames = a["executed"].shape[1]
    need = (BEFORE + HORIZON) * round_len + 1
    if frames < need:
        raise AvoidanceError(
            f"{ds.root}: episodes of {frames} frames are too short; the window "
            f"of a round needs {need} (round_len {round_len})"
        )
    unprovoked = list(ds.manifest.get("events", EVENTS)).index("unprovoked_defection")
    dispositions = list(ds.manifest.get("dispositions", DISPOSITIONS))
    x = exchanges(a, round_len)
    used = len(ds.manifest["shards"][:shards])
    return {
        "dataset": str(ds.root),
        "shards": used,
        "num_shards": len(ds.manifest["shards"]),
        "episodes": len(a["executed"]),
        "frames": frames,
        "round_len": round_len,
        "config": {k: ds.manifest["config"].get(k) for k in ("law", "react_delay")},
        "per_episode": episode_counts(x, unprovoked),
        **analyse(pair_rows(a, x, round_len), unprovoked, dispositions, round_len),
    }


def pm(m: float, se: float, digits: int = 4) -> str:
    return "–" if math.isnan(m) else f"{m:+.{digits}f}±{se:.{digits}f}"


def report(res: dict, command: str) -> list[str]:
    """The markdown tables of a result of `avoidance`."""
    cfg, ep, rows = res["config"], res["per_episode"], res["rows"]
    lines = [
        "# Delayed avoidance after a betrayal (experiments/avoidance.py)",
        "",
        f"Command: `{command}`; {res['shards']} of {res['num_shards']} shards, "
        f"{res['episodes']} episodes of {res['frames']} frames, round_len "
        f"{res['round_len']}, law {cfg['law']}, react_delay {cfg['react_delay']}.",
        "",
        "## How rare: per episode (betrayal: i D, j C, per ordered pair)",
        "",
        "| pair exchanges | mutual C | betrayals | unprovoked | unprovoked by the ego |",
        "| --- | --- | --- | --- | --- |",
        f"| {ep['exchanges']:.2f} | {ep['mutual_c']:.2f} | {ep['betrayals']:.2f} "
        f"(sd {ep['betrayals_sd']:.2f}) | {ep['unprovoked']:.2f} | "
        f"{ep['ego_unprovoked']:.2f} |",
        "",
        f"Of all pair exchanges: betrayals {ep['fraction_betrayals']:.3f}, unprovoked "
        f"{ep['fraction_unprovoked']:.3f}, mutual C {ep['fraction_mutual_c']:.3f}; "
        f"unprovoked betrayals per (unordered pair, round) "
        f"{ep['unprovoked_per_pair_round']:.4f}. Rows with the whole window: betrayals "
        f"{rows['betrayal']}, unprovoked {rows['unprovoked']}, tremble {rows['tremble']}, "
        f"mutual-C pairs {rows['mutual_c_pairs']}, tremble control "
        f"{rows['tremble_control']}.",
        "",
        "## How large: d(r+s+1) - d(r+s), betrayal minus control (mean ± SE; s < 0 is "
        "before the betrayal)",
        "",
    ]
    head = ["", "n", *(f"s={s}" for s in res["steps"])]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    names = {
        "unprovoked": "unprovoked − mutual-C pairs",
        "tremble": "tremble − mutual C (i intended C)",
    }
    for key, label in names.items():
        b = res["distance_change"][key]
        cells = [pm(m, se) for m, se in zip(b["diff"], b["se"], strict=True)]
        lines.append(f"| {label} | {b['n']} | " + " | ".join(cells) + " |")
        lines.append(
            f"| its control's SD | {b['n_control']} | "
            + " | ".join(f"{v:.4f}" for v in b["control_sd"])
            + " |"
        )
        lines.append(
            "| effect / control SD | | "
            + " | ".join(f"{v:+.2f}" for v in b["effect_over_control_sd"])
            + " |"
        )
    victims = ", ".join(
        f"{name} {pm(v['diff'], v['se'])} (n={v['n']})"
        for name, v in res["tremble_by_victim"].items()
        if v["n"]
    )
    lines += [
        "",
        f"Tremble set at s={ONSET} by the victim j's disposition: {victims}.",
        "",
        "## j's radial velocity away from i (state vx, vy) at the exchange frames, "
        "tremble minus control",
        "",
    ]
    v = res["radial_velocity_tremble"]
    lines += [
        "| " + " | ".join(f"r+{k}" for k in v["rounds"]) + " |",
        "|" + " --- |" * len(v["rounds"]),
        "| " + " | ".join(pm(m, se, 5) for m, se in zip(v["diff"], v["se"], strict=True)) + " |",
        "",
    ]
    p = res["predictability"]
    lines += [
        f"## How predictable: held-out R^2 of d(r+3) - d(r+2) (one row per unordered "
        f"exchanging pair, 50 % split, seed {SEED})",
        "",
    ]
    if "r2" not in p:
        return lines + [f"Too few rows ({p['n']}).", ""]
    c = p["coef"]
    lines += [
        f"n={p['n']}, SD of the target {p['sd_y']:.4f}, one-sided D at r in "
        f"{p['one_sided_fraction']:.3f} of the rows.",
        "",
        "| predictors | R^2 |",
        "| --- | --- |",
        f"| (a) movement history (d at r..r+2, d(r+2)^2, separation rate at r+1, r+2) "
        f"| {p['r2']['history']:.4f} |",
        f"| (b) (a) + round r's outcome: one-sided D (coef {c['one_sided_d']:+.4f}), "
        f"mutual D ({c['mutual_d']:+.4f}) | {p['r2']['outcome']:.4f} |",
        f"| (c) (b) + the one-sided D was unprovoked (coef {c['unprovoked']:+.4f}) "
        f"| {p['r2']['unprovoked']:.4f} |",
        f"| (d) (b) + hidden trust T[j,i], T[i,j] after round r (reference) "
        f"| {p['r2']['trust']:.4f} |",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    dataset_tool.main(
        "avoidance.py",
        dataset_tool.parser(__doc__),
        argv,
        lambda args: avoidance(open_dataset(args.data), args.shards),
        report,
        (AvoidanceError,),
    )


if __name__ == "__main__":
    main()
