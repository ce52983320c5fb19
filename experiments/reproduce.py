"""`make reproduce`: the study of issue 6 on a CPU, re-runnable, every part runnable alone.

    python experiments/reproduce.py [--part PART ...] [--seeds 0 1 2] [--obs pixels state]
                                    [--worlds physics polis] [--variants VARIANT ...]
    python experiments/reproduce.py --rerun PROBE_DIR   # one run again from its provenance

Every model is base.yaml + physical.yaml or political.yaml + study.yaml + the config diffs its
variant lists below (ABLATIONS, OBJECTS, CURRICULA, OBJECT_CURRICULA: files under experiments/),
so a variant is read, and re-run by hand, as `pwm fit -c ... -c DIFF.yaml`. A run's command line
adds only what is its own: the dataset, the observation kind and the seed.

Parts (default: all, in this order; each makes the datasets it needs first): `data` (the
training, item and counterfactual sets), `main` (the physical and the political model, pixels
and state), `ablations`, `curricula` (the political model on the Polis mixture under each data
schedule of DESIGN 5.4), `legibility` (Polis with cues held for the whole round), `objects` (the
object-centric model, state only) and `report` (`pwm report` over every finished probe, copied
with the per-run metrics to experiments/results/study/ with the command and commit; probe runs
committed there but missing under runs/study-probes/ are unpacked first, so a report never
drops a committed result). What each part runs, why, and how long it takes on this project's
CPU: experiments/results/study/README.md, "What each part runs".

`--rerun` re-makes the datasets, the fit and the probe of one probe folder from the commands
its metrics.json records, in a fresh folder under runs/, and prints how the numbers compare
(experiments/rerun.py); nothing else of the study runs.

A seed S sets `seed_everything` and `data.split_seed` (initialisation, episode split, batch
order). Runs are `runs/study-<model>-<obs>-<variant>-s<S>`, probes `runs/study-probes/...`;
finished datasets, runs and probes are kept (runner.py), so an interrupted study resumes where
it stopped and never overwrites a finished result (delete a run's folder to redo it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import launcher
import numpy as np
import rerun as rerun_check
from runner import dataset, fit, probe, report_and_curate, run

from pwm.probes.metrics import spearman_lawful

DATA, PROBES = Path("data/study"), Path("runs/study-probes")
RESULTS = Path("experiments/results/study")
SIZE = ["--image-size", "32"]
BASE, STUDY = "experiments/base.yaml", "experiments/study.yaml"
STEPS = 6000
# --scale: the study's sizes (training episodes, physics item pairs and Polis item groups per
# condition, counterfactual pairs, steps per run), extra fit options and the name its data,
# runs and probes go under; `tiny` is a check that the plumbing runs (tests, the launcher)
SCALES = {
    "full": dict(episodes=1024, pairs=200, groups=100, counterfactual=100, steps=6000, fit=[],
                 name="study"),
    "tiny": dict(episodes=8, pairs=4, groups=2, counterfactual=8, steps=2,
                 fit=["--trainer.val_check_interval=2", "--trainer.limit_val_batches=1",
                      "--data.batch_size=4", "--trainer.enable_progress_bar=false"],
                 name="study-tiny"),
}  # fmt: skip
SCALE = SCALES["full"]
STATE = ("SCALE", "DATA", "PROBES", "RESULTS", "STEPS")  # what a launcher's job needs of --scale
PARTS = ("data", "main", "ablations", "curricula", "legibility", "objects", "report")
MODEL_OF = {"physics": "physical", "polis": "political"}


def diffs(*names: str) -> list[str]:
    """The config diff files experiments/NAME.yaml, in the order given (later ones win)."""
    return [f"experiments/{n}.yaml" for n in names]


# variant -> its config diffs after study.yaml; the main model (`sigreg`) has none
ABLATIONS = {
    "none": diffs("ablations/none"),  # no regulariser: the collapse
    "vicreg": diffs("ablations/vicreg"),
    "ema": diffs("ablations/ema"),  # EMA target with stop-gradient, no regulariser
    "lam1": diffs("ablations/lam1"),  # SIGReg 11x stronger: does it keep the cues?
    "stopgrad": diffs("ablations/stopgrad"),  # SIGReg with the target detached
    "frozen": diffs("ablations/frozen"),  # random encoder: the predictor alone learns
    "oracle": diffs("ablations/oracle"),  # z = the state; state only
}
OBJECTS = {  # the object-centric model (state only)
    "objects": diffs("objects"),
    "objects-frozen": diffs("objects", "ablations/frozen"),  # a random per-object encoder
    "objects-oracle": diffs("objects", "ablations/oracle"),
    "objects-sg": diffs("objects", "ablations/stopgrad"),  # end to end, target detached
    "objects-h18": diffs("objects", "objects/h18"),  # history 18 frames instead of 12
    "objects-oracle-h18": diffs("objects", "ablations/oracle", "objects/h18"),
    "objects-sg-h18": diffs("objects", "ablations/stopgrad", "objects/h18"),
}
CURRICULA = {  # data schedules over the Polis mixture (DESIGN 5.4)
    "civilized": diffs("curricula/civilized"),
    "hobbesian": diffs("curricula/hobbesian"),
    "mixed": diffs("curricula/mixed"),
    "immunization": diffs("curricula/immunization", "curricula/immunization-6000"),
}
# each schedule also with the object-centric detached-target recipe (state only)
OBJECT_CURRICULA = {f"objects-sg-{c}": [*OBJECTS["objects-sg"], *d] for c, d in CURRICULA.items()}
STATE_ONLY = ("oracle",)  # variants that need the simulator state (skipped with pixels)
# the end-to-end political models also get the consequence probe (not objects-h18: the
# counterfactual set has t_event 16 in every pair: no room for 18 frames of context)
CONSEQUENCE = ("sigreg", "stopgrad", "objects", "objects-sg", *CURRICULA, *OBJECT_CURRICULA)
HOLD6 = ["--cue-hold", "6"]  # cues stay drawn for the whole round (default 2 of round_len 6)


def set_scale(name: str) -> None:
    """Sizes and paths of `--scale NAME` (SCALES); `full` is the study."""
    global SCALE, DATA, PROBES, RESULTS, STEPS
    SCALE = SCALES[name]
    DATA, PROBES = Path("data") / SCALE["name"], Path("runs") / f"{SCALE['name']}-probes"
    tiny = Path("runs") / f"{SCALE['name']}-results"  # never the committed results
    RESULTS = Path("experiments/results/study") if name == "full" else tiny
    STEPS = SCALE["steps"]


def datasets() -> dict[str, Path]:
    """Every dataset of the study (made unless finished)."""
    n, pairs, groups = str(SCALE["episodes"]), str(SCALE["pairs"]), str(SCALE["groups"])
    return {
        "physics": dataset("generate", "physics", DATA / "physics", "--episodes", n,
                           "--frames", "48", "--seed", "0", *SIZE),
        "polis": dataset("generate", "polis", DATA / "polis", "--episodes", n, "--frames",
                         "64", "--seed", "0", *SIZE),
        "mixture": dataset("generate", "polis", DATA / "polis_mixture", "--episodes", n,
                           "--frames", "64", "--seed", "2", "--population", "mixture",
                           "--hobbesian-fraction", "0.5", *SIZE),
        "physics_items": dataset("items", "physics", DATA / "physics_items", "--items", pairs,
                                 "--seed", "1", *SIZE),
        "polis_items": dataset("items", "polis", DATA / "polis_items", "--items", groups,
                               "--seed", "1", *SIZE),
        "hobbesian_items": dataset("items", "polis", DATA / "polis_items_hobbesian", "--items",
                                   groups, "--seed", "3", "--population", "hobbesian", *SIZE),
        "consequence": dataset("items", "polis", DATA / "polis_consequence", "--items",
                               str(SCALE["counterfactual"]), "--seed", "4", "--consequence",
                               *SIZE),
        "polis_hold6": dataset("generate", "polis", DATA / "polis_hold6", "--episodes", n,
                               "--frames", "64", "--seed", "0", *HOLD6, *SIZE),
        "polis_hold6_items": dataset("items", "polis", DATA / "polis_items_hold6", "--items",
                                     groups, "--seed", "1", *HOLD6, *SIZE),
    }  # fmt: skip


def train_and_probe(
    d: dict,
    world: str,
    obs: str,
    variant: str,
    seed: int,
    configs: list[str],
    data_path: Path,
    item_sets: list[tuple[str, Path]],
    probe_data: list[Path],
) -> None:
    """One run (`fit`: the study's configs, then the variant's `configs`) and its probes: one
    `pwm probe` per (label, item set); the label is appended to the probe's model name, so
    `pwm report` keeps the item sets apart."""
    model = MODEL_OF[world]
    ckpt = fit(f"{SCALE['name']}-{model}-{obs}-{variant}-s{seed}",
               [BASE, f"experiments/{model}.yaml", STUDY, *configs], STEPS,
               f"--data.path={data_path}", f"--data.observation={obs}",
               f"--seed_everything={seed}", f"--data.split_seed={seed}", *SCALE["fit"])  # fmt: skip
    for label, items in item_sets:
        name = f"{model}-{obs}-{variant}{label}"
        options = ["--name", name, *[a for x in probe_data for a in ("--probe-data", str(x))]]
        if items == d[f"{other(world)}_items"]:
            options.append("--cross-world")
        if world == "polis" and not label and variant in CONSEQUENCE:
            options += ["--consequence", str(d["consequence"])]
        probe(ckpt, [items], PROBES / f"{name.replace(' ', '-')}-s{seed}", *options)


def other(world: str) -> str:
    return "physics" if world == "polis" else "polis"


def model_runs(d: dict, args, variant: str, configs: list[str]) -> None:
    """The physical and political model of one variant: every world, observation and seed."""
    for seed in args.seeds:
        for obs in (o for o in args.obs if o == "state" or variant not in STATE_ONLY):
            for world in args.worlds:
                sets, probe_data = [("", d[f"{world}_items"])], [d[world]]
                # pixel models also on the other world's items: the 2x2. State models are not:
                # both states are 36-d, but the physics state's cue columns are zero in training
                if obs == "pixels":
                    sets.append((f" x {other(world)}", d[f"{other(world)}_items"]))
                    probe_data = [d["physics"], d["polis"]]
                train_and_probe(d, world, obs, variant, seed, configs, d[world], sets,
                                probe_data)  # fmt: skip


def curricula(d: dict, args) -> None:
    """The political model on the mixture set under each data schedule; with state
    observations also the object-centric detached-target model (`objects-sg-<schedule>`)."""
    sets = [("", d["polis_items"]), (" x hobbesian", d["hobbesian_items"])]
    for seed in args.seeds:
        for obs in args.obs:
            for schedule in CURRICULA:
                runs = {schedule: CURRICULA[schedule]}  # variant: configs
                if obs == "state":
                    runs[f"objects-sg-{schedule}"] = OBJECT_CURRICULA[f"objects-sg-{schedule}"]
                for variant in (v for v in runs if v in args.variants):
                    train_and_probe(d, "polis", obs, variant, seed, runs[variant], d["mixture"],
                                    sets, [d["mixture"]])  # fmt: skip


def legibility(d: dict, args) -> None:
    """The political model on Polis whose cues stay drawn for the whole round (`--cue-hold 6`),
    probed on items made the same way: is a cue the latent can keep easier to be surprised by?"""
    for seed in args.seeds:
        for obs in args.obs:
            train_and_probe(d, "polis", obs, "hold6", seed, [], d["polis_hold6"],
                            [("", d["polis_hold6_items"])], [d["polis_hold6"]])  # fmt: skip


def objects(d: dict, args) -> None:
    """The object-centric model of both worlds (state only), end to end and as the oracle."""
    if "state" not in args.obs:
        print("- objects: state observations only, skipped (--obs has no state)")
        return
    for seed in args.seeds:
        for variant in (v for v in OBJECTS if v in args.variants):
            for world in args.worlds:
                train_and_probe(d, world, "state", variant, seed, OBJECTS[variant], d[world],
                                [("", d[f"{world}_items"])], [d[world]])  # fmt: skip


GOAL_TESTS = ("teleport", "M2", "R", "M1", "Q")


def goals(report_json: Path, probes: list[Path]) -> str:
    """The issue's goals, one row per (model, item set): the named tests (mean paired accuracy
    over seeds [95% CI], from `pwm report`), Spearman rho with the ideal observer (mean over seeds;
    the largest per-seed p) over all items and over the lawful ones (the range of p), the M2
    dose-response (per seed: the least-squares slope of M2 paired accuracy on log2 K; mean), and
    the linear probes of the cues and the dispositions."""
    groups = json.loads(report_json.read_text())
    extra: dict[tuple[str, str], list[dict]] = {}
    for p in probes:
        run = json.loads((p / "metrics.json").read_text())
        for entry in run["items"]:
            extra.setdefault((run["model"]["name"], entry["world"]), []).append(entry)
    rows = []
    for key, g in groups.items():
        name, _, items = key.split(" / ")
        cells = [name, items, str(g["seeds"])]
        for test in GOAL_TESTS:
            c = g["comparisons"].get(test)
            cells.append(f"{c['paired_accuracy']:.2f} [{c['ci'][0]:.2f}, {c['ci'][1]:.2f}]"
                         if c else "–")  # fmt: skip
        entries = extra.get((name, items), [])
        rho = [e["scorers"]["model"]["spearman_ideal"]["max"] for e in entries]
        cells.append(f"{np.mean([r['rho'] for r in rho]):.2f} (p ≤ {max(r['p'] for r in rho):.0e})"
                     if rho else "–")  # fmt: skip
        lawful = [r for r in map(lawful_rho, entries) if r is not None]
        ps = sorted(r[1] for r in lawful)
        cells.append(f"{np.mean([r[0] for r in lawful]):+.2f} (p {ps[0]:.0e} to {ps[-1]:.0e})"
                     if lawful else "–")  # fmt: skip
        slopes = []
        for e in entries:
            dose = e["scorers"]["model"].get("dose_response", {}).get("M2", {}).get("max")
            if dose:
                slopes.append(np.polyfit(np.log2(dose["K"]), dose["paired_accuracy"], 1)[0])
        cells.append(f"{np.mean(slopes):+.3f}" if slopes else "–")
        for target in ("cues", "disposition"):
            vals = [e["linear_probes"]["targets"].get(target) for e in entries
                    if e.get("linear_probes", {}).get("targets")]  # fmt: skip
            model = [v["model"] for v in vals if v]
            rand = [v["random_init"] for v in vals if v]
            cells.append(f"{np.mean(model):.2f} ({np.mean(rand):.2f})" if model else "–")
        rows.append(cells)
    header = ["model", "items", "seeds", *GOAL_TESTS, "rho ideal", "rho lawful", "M2 dose slope",
              "cues R² (random)", "disposition acc. (random)"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def lawful_rho(entry: dict) -> tuple[float, float] | None:
    """Spearman rho (and p) of the model's max event score with the ideal observer over the
    lawful items only, from the probe's per-item scores (so probes that predate the stored
    `spearman_ideal_lawful` count too); None where undefined (physics: every lawful item ties)."""
    scores = entry["per_item"]["scores"]
    rho, p = spearman_lawful(scores["model"]["max"], scores["ideal_observer"]["max"])
    return None if np.isnan(rho) else (rho, p)


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True)
    return (out.stdout.strip() or "unknown") + (
        " (with uncommitted changes)" if dirty.stdout.strip() else ""
    )


def restore() -> list[str]:
    """Unpack the committed copy of every probe run that `runs/study-probes/` lacks.

    `runs/` is not committed, so a fresh clone has none of the study's probes; without this a
    report made there would cover only the runs made since and replace the committed one. A probe
    folder that exists is kept as it is (a re-probed run wins over its committed copy)."""
    restored = []
    for src in sorted((RESULTS / "runs").glob("*/metrics.json.gz")):
        dst = PROBES / src.parent.name
        if (dst / "metrics.json").exists():
            continue
        dst.mkdir(parents=True, exist_ok=True)
        for f in src.parent.iterdir():
            if f != src:
                shutil.copy2(f, dst / f.name)
        tmp = dst / "metrics.json.tmp"
        tmp.write_bytes(gzip.decompress(src.read_bytes()))
        tmp.replace(dst / "metrics.json")  # last: the folder is a finished probe only once whole
        restored.append(dst.name)
    return restored


def report(command: str) -> None:
    """`pwm report` over every finished probe and the committed ones (restored first); curated
    copy under experiments/results/study."""
    if restored := restore():
        print(f"- restored {len(restored)} probe runs from {RESULTS / 'runs'}")
    probes = sorted(p.parent for p in PROBES.glob("*/metrics.json"))
    if not probes:
        raise SystemExit(f"no finished probes under {PROBES}: run the other parts first")
    # the pixel runs' plots are kept too
    out = report_and_curate(probes, PROBES, RESULTS, figures=lambda p: "-pixels-" in p.name)
    (RESULTS / "GOALS.md").write_text(
        "# The issue's goals, measured\n\nPaired accuracy with the max aggregator, mean over seeds "
        "[95% hierarchical bootstrap CI]; see `experiments/reproduce.py::goals` for every column."
        "\n\n" + goals(PROBES / "REPORT.json", probes)
    )
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (RESULTS / "PROVENANCE.md").write_text(
        f"# Provenance\n\nMade by `{command}` on {when} from commit {commit()}; "
        f"{len(probes)} probe runs: "
        f"{', '.join(p.name for p in probes)}.\n"
    )
    print(out.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--obs", nargs="+", choices=("pixels", "state"), default=["pixels", "state"])
    p.add_argument("--worlds", nargs="+", choices=("physics", "polis"),
                   default=["physics", "polis"])  # fmt: skip
    variants = (*ABLATIONS, *CURRICULA, *OBJECT_CURRICULA, *OBJECTS)
    p.add_argument("--variants", nargs="+", choices=variants, default=list(variants),
                   help="the ablations, curricula and object-centric variants to run "
                        "(default: all)")  # fmt: skip
    p.add_argument("--rerun", type=Path, metavar="PROBE_DIR",
                   help="re-run one probed run from its recorded provenance into runs/ and "
                        "compare its metrics (experiments/rerun.py)")  # fmt: skip
    p.add_argument("--scale", choices=tuple(SCALES), default="full",
                   help="full: the study; tiny: a few episodes, items and steps under "
                        "data/study-tiny, runs/study-tiny-*: does the plumbing run?")  # fmt: skip
    launcher.add_arguments(p)
    args = p.parse_args()
    if args.rerun:
        try:
            raise SystemExit(rerun_check.rerun(args.rerun, Path("runs"), run))
        except rerun_check.RerunError as e:
            print(f"reproduce.py --rerun: error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
    set_scale(args.scale)
    launcher.main(sys.modules[__name__], lambda: study(args), args,
                  keep_data="data" in args.part, state=STATE)  # fmt: skip


def study(args) -> None:
    """The parts asked for, in order (every step skips what is finished: runner.py)."""
    d = datasets()
    if "main" in args.part:
        model_runs(d, args, "sigreg", [])
    if "ablations" in args.part:
        for variant, configs in ABLATIONS.items():
            if variant in args.variants:
                model_runs(d, args, variant, configs)
    if "curricula" in args.part:
        curricula(d, args)
    if "legibility" in args.part:
        legibility(d, args)
    if "objects" in args.part:
        objects(d, args)
    if "report" in args.part:
        keys = ("part", "seeds", "obs", "worlds", "variants")
        report("python experiments/reproduce.py " + " ".join(
            f"--{k} {' '.join(map(str, getattr(args, k)))}" for k in keys)
            + ("" if args.scale == "full" else f" --scale {args.scale}"))  # fmt: skip


if __name__ == "__main__":
    main()
