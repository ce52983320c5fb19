"""Probe throughput: seconds per item and per model of `pwm probe`, against an older commit.

    python experiments/benchmarks/probe_throughput.py [--quick] [--groups N] [--pairs N]
        [--ckpt CKPT --items DIR [--items DIR]] [--against REV] [--threads N] [--json PATH]

One model's probe is `pwm probe` on a Polis item set and, cross-world, a physics item set (the
demo's 2x2 cell of one model); each runs in its own process and is timed from the outside (wall
time, imports and figures included). Without `--ckpt` the script makes what it needs under a
temporary folder: the demo's model (base + political + law + demo.yaml) trained for 1 step on
16 episodes (the probe's cost does not depend on the weights) and item sets of `--groups` Polis
groups per condition (law reciprocity, 16 px) and `--pairs` physics pairs per condition (t*
after frame 50, as the demo's). `--against REV` runs the same probes with the code of commit
REV (`git archive` of pwm/ and data_gen/ into a temporary folder), alternating the two, and
checks that the two give the same numbers: the largest difference of any per-item event score
and whether every paired accuracy is equal. `--threads` sets OMP_NUM_THREADS and torch's
threads in the probes (default: torch's default).

Target (issue 33): 500 Polis groups per condition plus 500 physics pairs per condition for one
model in <= 5 min on this CPU (checked only when both sizes are at least 500).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
from common import finish, load, table

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ["experiments/base.yaml", "experiments/political.yaml", "experiments/law.yaml",
           "experiments/demo.yaml"]  # fmt: skip
PHYSICS_ITEMS = ["--frames", "72", "--t-star-min", "50", "--t-star-max", "66"]
SIZE = ["--image-size", "16"]
GOAL_S = 300.0


def pwm(tree: Path, args: list[str], threads: int, check: bool = True) -> float:
    """Run `python -m pwm.cli ARGS` with the code of `tree`; its wall time in seconds."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "pwm.cli", *args], cwd=tree, env=env,
                         capture_output=True, text=True)  # fmt: skip
    if check and res.returncode:
        raise SystemExit(f"pwm {' '.join(args[:2])} failed:\n{res.stderr[-3000:]}")
    return time.perf_counter() - t0


def setup(tmp: Path, groups: int, pairs: int) -> tuple[Path, list[Path]]:
    """A 1-step demo model and the two item sets, made under `tmp`."""
    data = tmp / "data"
    pwm(ROOT, ["generate", "polis", "--out", str(data / "polis"), "--episodes", "16", "--frames",
               "241", "--seed", "0", "--law", "reciprocity", *SIZE], 0)  # fmt: skip
    pwm(ROOT, ["items", "polis", "--out", str(data / "polis_items"), "--items", str(groups),
               "--seed", "1", "--law", "reciprocity", *SIZE], 0)  # fmt: skip
    pwm(ROOT, ["items", "physics", "--out", str(data / "physics_items"), "--items", str(pairs),
               "--seed", "1", *PHYSICS_ITEMS, *SIZE], 0)  # fmt: skip
    runs = tmp / "runs"
    pwm(ROOT, ["fit", *[a for c in CONFIGS for a in ("-c", str(ROOT / c))],
               f"--data.path={data / 'polis'}", "--trainer.max_steps=1",
               "--trainer.limit_val_batches=1", "--trainer.val_check_interval=1",
               "--trainer.enable_progress_bar=false", "--data.batch_size=8",
               "--trainer.logger.init_args.name=bench", f"--trainer.default_root_dir={runs}",
               f"--trainer.logger.init_args.save_dir={runs}"], 0)  # fmt: skip
    return next(runs.rglob("last.ckpt")), [data / "polis_items", data / "physics_items"]


def archive(rev: str, dst: Path) -> str:
    """The code (pwm/, data_gen/, experiments/voe.yaml) of commit REV under dst; its short hash."""
    short = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    tar = subprocess.run(["git", "archive", rev, "pwm", "data_gen", "experiments/voe.yaml"],
                         cwd=ROOT, check=True, capture_output=True).stdout  # fmt: skip
    with tarfile.open(fileobj=BytesIO(tar)) as t:
        t.extractall(dst, filter="data")
    return short


def probe(tree: Path, ckpt: Path, items: Path, out: Path, threads: int,
          extra: list[str] = ()) -> tuple[float, dict]:  # fmt: skip
    """One `pwm probe` (cross-world allowed); its wall time and metrics.json."""
    args = ["probe", "--ckpt", str(ckpt), "--items", str(items), "--out", str(out),
            "--config", str(tree / "experiments/voe.yaml"), "--cross-world", *extra]  # fmt: skip
    seconds = pwm(tree, args, threads)
    return seconds, json.loads((out / "metrics.json").read_text())


def agreement(a: dict, b: dict) -> tuple[float, bool]:
    """Largest |difference| of the per-item event scores of every scorer and aggregator, and
    whether every comparison's paired accuracy is equal, between two probes of one item set."""
    ea, eb = a["items"][0], b["items"][0]
    diff = 0.0
    for scorer, aggs in ea["per_item"]["scores"].items():
        for agg, values in aggs.items():
            x = np.asarray(values, dtype=float)
            y = np.asarray(eb["per_item"]["scores"][scorer][agg], dtype=float)
            if np.isfinite(x).any():
                diff = max(diff, float(np.nanmax(np.abs(x - y))))
    same = all(
        comp[agg]["paired_accuracy"]
        == eb["scorers"][scorer]["comparisons"][name][agg]["paired_accuracy"]
        for scorer, block in ea["scorers"].items()
        for name, comp in block["comparisons"].items()
        for agg in a["config"]["aggregators"]
    )
    return diff, same


def git_head() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True)  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return (out.stdout.strip() or "working tree") + (" + uncommitted changes" if dirty else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="10 groups and 20 pairs")
    p.add_argument("--groups", type=int, default=100, help="Polis groups per condition")
    p.add_argument("--pairs", type=int, default=100, help="physics pairs per condition")
    p.add_argument("--ckpt", help="probe this checkpoint (default: a 1-step demo model)")
    p.add_argument("--items", action="append", default=[], help="item sets (with --ckpt)")
    p.add_argument("--against", metavar="REV", help="also time the code of commit REV")
    p.add_argument("--threads", type=int, default=0, help="threads per probe (0: default)")
    p.add_argument("--probe-args", default="", metavar="'ARGS'",
                   help="more `pwm probe` options, e.g. '--probe-data DIR --consequence DIR' "
                        "(with --ckpt; given to every item set's probe)")  # fmt: skip
    p.add_argument("--json", help="write the result here (for run_all.py)")
    args = p.parse_args()
    start = load()
    if args.quick:
        args.groups, args.pairs = 10, 20
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.ckpt:
            ckpt, item_sets = Path(args.ckpt).resolve(), [Path(i).resolve() for i in args.items]
        else:
            ckpt, item_sets = setup(tmp, args.groups, args.pairs)
        head = git_head()
        trees = {head: ROOT}
        if args.against:
            trees = {archive(args.against, tmp / "against"): tmp / "against", **trees}
        rows, data, metrics = [], {"threads": args.threads, "runs": []}, {}
        for items in item_sets:
            for code, tree in trees.items():
                out = tmp / "out" / f"{items.name}-{len(metrics)}"
                seconds, m = probe(tree, ckpt, items, out, args.threads, args.probe_args.split())
                metrics[(items.name, code)] = m
                n = m["items"][0]["num_items"]
                groups = m["items"][0]["num_groups"]
                data["runs"].append({"items": items.name, "code": code, "seconds": seconds,
                                     "num_items": n, "num_groups": groups})  # fmt: skip
                rows.append([items.name, code, n, groups, f"{seconds:.1f}",
                             f"{1e3 * seconds / n:.1f}"])  # fmt: skip
        per_model = {
            code: sum(r["seconds"] for r in data["runs"] if r["code"] == code) for code in trees
        }
        data["per_model_s"] = per_model
    md = [
        f"Checkpoint: {'`' + args.ckpt + '`' if args.ckpt else 'the demo model, 1 step'}; "
        + (f"probe options `{args.probe_args}`; " if args.probe_args else "")
        + f"threads per probe: {args.threads or 'torch default'}; one `pwm probe` process per "
        "item set, wall time (imports, metrics and figures included).",
        "",
        table(["item set", "code", "items", "groups / pairs", "seconds", "ms per item"], rows),
        "",
        "Per model (both item sets): "
        + "; ".join(f"{code}: {s:.1f} s" for code, s in per_model.items())
        + (f" ({per_model[next(iter(trees))] / per_model[head]:.2f}x)" if args.against else "")
        + ".",
    ]
    if args.against:
        old, new = list(trees)
        for items in item_sets:
            diff, same = agreement(metrics[(items.name, old)], metrics[(items.name, new)])
            data.setdefault("agreement", {})[items.name] = {"max_abs_diff": diff, "same": same}
            md.append(
                f"\n{items.name}: largest per-item event-score difference {old} vs {new}: "
                f"{diff:.1e}; every paired accuracy equal: {'yes' if same else 'NO'}."
            )
    smallest = min((r["num_groups"] for r in data["runs"]), default=0)
    total = per_model[head]
    if smallest >= 500 and len(item_sets) >= 2:
        ok = total <= GOAL_S
        md.append(
            f"\nTarget (>= 500 Polis groups + 500 physics pairs per condition, one model, "
            f"<= 5 min): {total:.0f} s -> {'MET' if ok else 'MISSED'}"
        )
    else:
        md.append(
            f"\nTarget (>= 500 Polis groups + 500 physics pairs per condition, one model, "
            f"<= 5 min): not measured at this size ({smallest} groups or pairs per condition)"
        )
    finish("Probe throughput", "\n".join(md), data, args.json, start)


if __name__ == "__main__":
    main()
