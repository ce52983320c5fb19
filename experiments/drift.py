"""How far two trainings of the same recipe and seed drift apart (the provenance issue, part 3).

    python experiments/drift.py RUN_A RUN_B [--probe PROBE_A PROBE_B] [--json OUT]

RUN_A, RUN_B: two `pwm fit` run folders (`runs/<name>/version_0`) whose checkpoints carry the
step in their name (`step-1000.ckpt`, `latest-step=3000.ckpt`, ...), e.g. the same command at 1
and at 2 torch threads. For every step both runs saved, over all floating tensors of the model's
state dict: the largest absolute weight difference and the relative L2 distance
||w_A - w_B|| / ||w_A||. With `--probe`, the two `pwm probe` folders' named social comparisons
(max aggregator) and history effects side by side, with their difference and whether it exceeds
the run's own 95% CI half-width.

Why: a committed number is reproducible only to the drift that numerically different but
equivalent runs (thread counts, BLAS, CPU) accumulate; the study states it beside its claims.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

TESTS = ("M2", "R", "M1", "M1C", "Q")
STEP = re.compile(r"step[=-](\d+)")


class DriftError(Exception):
    """Bad input: one line for the user."""


def checkpoints(run: Path) -> dict[int, Path]:
    """step -> checkpoint file of a run folder (the newest file wins for a repeated step)."""
    folder = run / "checkpoints"
    if not folder.is_dir():
        raise DriftError(f"{run} has no checkpoints/ folder (expected a `pwm fit` run folder)")
    out = {}
    for f in sorted(folder.glob("*.ckpt"), key=lambda f: f.stat().st_mtime):
        m = STEP.search(f.name)
        if m:
            out[int(m.group(1))] = f
    return out


def losses(run: Path) -> dict[int, str]:
    """step -> the logged training loss, as written (metrics.csv); {} without a log."""
    f = run / "metrics.csv"
    if not f.is_file():
        return {}
    with f.open(newline="") as fh:
        return {int(r["step"]): r["train/loss"] for r in csv.DictReader(fh) if r.get("train/loss")}


def loss_drift(a: dict[int, str], b: dict[int, str]) -> dict:
    """Logged steps both runs hold, how many carry the identical loss, the first that differs."""
    common = sorted(a.keys() & b.keys())
    differ = [s for s in common if a[s] != b[s]]
    return {"common_logged_steps": len(common), "identical": len(common) - len(differ),
            "first_difference": differ[0] if differ else None}  # fmt: skip


def weights(path: Path) -> dict[str, torch.Tensor]:
    sd = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v.double() for k, v in sd.items() if v.is_floating_point()}


def weight_drift(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, float]:
    """Largest |a - b| and ||a - b|| / ||a|| over the tensors both hold."""
    keys = sorted(set(a) & set(b))
    if not keys or any(a[k].shape != b[k].shape for k in keys):
        raise DriftError("the two checkpoints hold different models")
    diff = torch.cat([(a[k] - b[k]).flatten() for k in keys])
    norm = torch.cat([a[k].flatten() for k in keys]).norm()
    return {"max_abs": float(diff.abs().max()), "rel_l2": float(diff.norm() / norm)}


def probe_table(path: Path) -> tuple[dict[str, dict], list[float] | None]:
    """Named Polis comparisons (max aggregator) and history effects of a probe folder's first
    item set (value, CI and per-pair outcomes), and the model's per-item scores (None if not
    kept)."""
    f = path / "metrics.json"
    if not f.is_file():
        raise DriftError(f"{path} has no metrics.json (expected a `pwm probe` folder)")
    entry = json.loads(f.read_text())["items"][0]
    items = entry["scorers"]["model"]
    out = {}
    scores = entry.get("per_item", {}).get("scores", {}).get("model", {}).get("max")
    for t in TESTS:
        c = items["comparisons"].get(t, {}).get("max")
        if c:
            out[t] = {"value": c["paired_accuracy"], "ci": c["ci"], "outcomes": c.get("outcomes")}
    for key, name in (("history_effect", "HE"), ("history_effect_m1", "M1 + M1C - 1")):
        h = items.get(key, {}).get("max")
        if h:
            out[name] = {"value": h["value"], "ci": h["ci"]}
    return out, scores


def drift(run_a: Path, run_b: Path, probes: tuple[Path, Path] | None = None) -> dict:
    ca, cb = checkpoints(run_a), checkpoints(run_b)
    common = sorted(set(ca) & set(cb))
    trace = loss_drift(losses(run_a), losses(run_b))
    if not common and not trace["common_logged_steps"]:
        raise DriftError(f"{run_a} and {run_b} saved no checkpoint and logged no loss at the "
                         "same step")  # fmt: skip
    out = {"weights": {s: weight_drift(weights(ca[s]), weights(cb[s])) for s in common},
           "losses": trace}  # fmt: skip
    if probes:
        (pa, sa), (pb, sb) = probe_table(probes[0]), probe_table(probes[1])
        rows = {}
        for k in pa.keys() & pb.keys():
            a, b = pa[k], pb[k]
            half = (a["ci"][1] - a["ci"][0]) / 2
            rows[k] = {"a": a["value"], "b": b["value"], "diff": b["value"] - a["value"],
                       "ci_half_width_a": half,
                       "beyond_ci": abs(b["value"] - a["value"]) > half}  # fmt: skip
            if a.get("outcomes") is not None and b.get("outcomes") is not None:
                rows[k]["pairs_flipped"] = int(np.sum(np.array(a["outcomes"]) != b["outcomes"]))
        out["probe"] = {k: rows[k] for k in sorted(rows)}
        if sa is not None and sb is not None and len(sa) == len(sb):
            sa, sb = np.asarray(sa, float), np.asarray(sb, float)
            out["scores"] = {"max_abs_diff": float(np.nanmax(np.abs(sa - sb))),
                             "median_relative_diff": float(np.nanmedian(np.abs(sa - sb)
                                                                        / np.abs(sa)))}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    p.add_argument("--probe", nargs=2, type=Path, metavar=("PROBE_A", "PROBE_B"))
    p.add_argument("--json", type=Path, help="also write the table as JSON")
    args = p.parse_args(argv)
    try:
        out = drift(args.run_a, args.run_b, tuple(args.probe) if args.probe else None)
    except (DriftError, KeyError, RuntimeError) as exc:
        print(f"drift.py: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    lo = out["losses"]
    if lo["common_logged_steps"]:
        first = lo["first_difference"]
        where = f"the first difference at step {first}" if first is not None else "none differ"
        print(f"logged training losses: {lo['identical']} of {lo['common_logged_steps']} common "
              f"steps identical; {where}")  # fmt: skip
    for step, w in out["weights"].items():
        print(f"step {step}: max |w_A - w_B| {w['max_abs']:.3g}, relative L2 {w['rel_l2']:.3g}")
    for k, r in out.get("probe", {}).items():
        mark = " (beyond A's CI half-width)" if r["beyond_ci"] else ""
        flips = f", {r['pairs_flipped']} pairs flipped" if "pairs_flipped" in r else ""
        print(f"{k}: {r['a']:.3f} vs {r['b']:.3f} (diff {r['diff']:+.3f}{flips}){mark}")
    if "scores" in out:
        sc = out["scores"]
        print(f"per-item event scores: max |diff| {sc['max_abs_diff']:.3g}, median relative "
              f"{sc['median_relative_diff']:.3g}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
