"""The social-law study: does a world model learn the law that makes betrayal surprising?

    python experiments/law_study.py [--part data fit report] [--laws reciprocity justice]
                                    [--variants round oracle ...] [--seeds 0 1 2]

Every model is base.yaml + political.yaml (physical.yaml for the physical model) + law.yaml (one
step per exchange round, 8 rounds of history, one token per agent, the target detached) + the
variant's diff under experiments/law/ (VARIANTS: the lever it changes). Parts:
- data: per law (`--law reciprocity | justice`, DESIGN 3.3) a civilized training set (2,048
  episodes of 241 frames, 40 rounds; 16 px frames, unused by the state models), an item set of
  500 groups per condition (DESIGN 4.2: B is the ego, K in 1, 2, 4, 8 rounds, a 60-frame prefix)
  and a counterfactual set of 200 pairs (the consequence probe); a physics training set of the
  same size for the physical model. A variant in DATA_VARIANTS (the `links` family, and the
  `crops` pair: 32 px frames with 8 px object crops) gets its own copy of every set with its
  world options (`--state-links`: zero link columns in physics); the base sets are made only for
  a variant without its own.
- fit: train every (variant, law, seed) and probe it on its law's items with the consequence
  probe; the physical model is probed on both laws' Polis items (`--cross-world`: zero actions).
- report: `pwm report` over every finished probe -> experiments/results/law/ (REPORT, GOALS with
  the issue's goals per model and law, PROVENANCE, per-run metrics).
- curate (alone): the chosen runs' finished probes' metrics copied under
  experiments/results/law/runs, the REPORT left as it is (a checkout without the earlier probes).
A seed S sets `seed_everything` and `data.split_seed`. Finished datasets, runs and probes are
kept (runner.py), so an interrupted study resumes and never overwrites a finished result.
`--launcher local --jobs N` or `--launcher slurm` runs every step as its own job
(experiments/launcher.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import launcher
import numpy as np
from runner import curate, dataset, fit, probe, report_and_curate

DATA, PROBES = Path("data/law-study"), Path("runs/law-probes")
RESULTS = Path("experiments/results/law")
BASE = ["experiments/base.yaml"]
LAW = "experiments/law.yaml"
STEPS = 3000
LAWS = ("reciprocity", "justice")
SIZE = ["--image-size", "16"]
# variant -> (the model's world, the diff files after law.yaml); "round" is law.yaml itself.
# A variant in DATA_VARIANTS trains and probes on its own copy of the datasets (both worlds'),
# named with the suffix and made with the extra world options given there (same seeds: the same
# episodes, another observation). `links`: Polis's state with the exchange link one-hot; the
# physics state with the same columns, all zero, so the 2x2's cross-world probes read one layout.
LINKS = ("-links", ["--state-links"])
# Ninth session (issue 28): object tokens from pixels; 32 px frames and, per agent (disc), its
# 8 x 8 crop and position (`--crops`, the `crops` observation) in both worlds; the state keeps
# the link columns, so the states of both worlds read one layout as with `links`.
CROPS = ("-crops", ["--state-links", "--image-size", "32", "--crops", "8"])
DATA_VARIANTS = {
    "links": LINKS,
    "links-deep": LINKS,
    "physical-links": LINKS,
    "links-wide": LINKS,
    "links-events": LINKS,
    "links-deep-events": LINKS,
    "links-events-explore50": LINKS,
    "links-explore50": LINKS,
    "links-oracle": LINKS,
    "links-oracle-motion": LINKS,
    "crops": CROPS,
    "crops-widez": CROPS,
    "crops-widez-frozen": CROPS,
    "physical-crops": CROPS,
    "physical-crops-widez": CROPS,
    "crops-widez-linear": CROPS,
    "physical-crops-widez-linear": CROPS,
}
# variant -> (suffix, extra world options) of its own *training* set, made beside its
# DATA_VARIANTS sets (same seed); it is probed on those sets' items, so the comparison with the
# other variants is on the same items. Seventh session: an exploratory ego (half of its C/D
# choices at random instead of a tenth), so the consequences of its defections, the provoked
# contexts of the R items, are covered by more training windows.
EXPLORE50 = ("-links-explore50", ["--state-links", "--ego-explore", "0.5"])
TRAIN_ONLY = {"links-events-explore50": EXPLORE50, "links-explore50": EXPLORE50}
# the crop models' diffs: object tokens from pixels, and 64 dimensions of z per agent
CROP = "experiments/law/crops.yaml"
CROP_WIDE = [CROP, "experiments/law/wide-z.yaml"]
VARIANTS = {
    "round": ("polis", []),
    "oracle": ("polis", ["experiments/law/oracle.yaml"]),
    "gauss": ("polis", ["experiments/law/gauss.yaml"]),
    "oracle-gauss": ("polis", ["experiments/law/oracle-gauss.yaml"]),
    "frame": ("polis", ["experiments/law/frame.yaml"]),
    "online": ("polis", ["experiments/law/online.yaml"]),
    "flat": ("polis", ["experiments/law/flat.yaml"]),
    "h4": ("polis", ["experiments/law/h4.yaml"]),
    "deep": ("polis", ["experiments/law/deep.yaml"]),
    "links": ("polis", []),
    "links-deep": ("polis", ["experiments/law/deep.yaml"]),  # the link and a depth-4 predictor
    # sixth session: a wider depth-4 predictor; the event-weighted loss (law/events.yaml)
    "links-wide": ("polis", ["experiments/law/deep.yaml", "experiments/law/wide.yaml"]),
    "links-events": ("polis", ["experiments/law/events.yaml"]),
    "links-deep-events": ("polis", ["experiments/law/deep.yaml", "experiments/law/events.yaml"]),
    "links-events-explore50": ("polis", ["experiments/law/events.yaml"]),  # TRAIN_ONLY data
    "links-explore50": ("polis", []),  # the exploratory ego alone
    # eighth session: z = the standardised state with the link (no encoder learns): does the
    # predictor alone learn the partner's delayed move away (the consequence probe's onset)?
    "links-oracle": ("polis", ["experiments/law/oracle.yaml"]),
    # ... and when its loss is the motion columns' error only (a diagnostic, law/motion.yaml)
    "links-oracle-motion": (
        "polis",
        ["experiments/law/oracle.yaml", "experiments/law/motion.yaml"],
    ),
    # ninth session (issue 28): the agents' tokens encoded from their pixels (law/crops.yaml)
    "crops": ("polis", [CROP]),
    # ... with 64 dimensions per agent (the screen: the crop model's 16-d z drops the cue)
    "crops-widez": ("polis", CROP_WIDE),
    # ... a diagnostic: encoder and projector frozen at their random init (which keeps the cue in
    # z), only the predictor learns: can it learn the law from these pixel features at all?
    "crops-widez-frozen": ("polis", [*CROP_WIDE, "experiments/ablations/frozen.yaml"]),
    "physical-crops": ("physics", [CROP]),  # the 2x2 from pixels
    "physical-crops-widez": ("physics", CROP_WIDE),
    # tenth session: an affine projector to z (law/linear-proj.yaml: the MLP projector's last
    # layer is where the crop models lose the cue)
    "crops-widez-linear": ("polis", [*CROP_WIDE, "experiments/law/linear-proj.yaml"]),
    "physical-crops-widez-linear": ("physics", [*CROP_WIDE, "experiments/law/linear-proj.yaml"]),
    "physical": ("physics", []),
    "physical-links": ("physics", []),
}
TWO_BY_TWO = {
    "round",
    "links",
    "crops",
    "crops-widez",
    "crops-widez-linear",
}  # political variants also probed on physics items
MODEL = {"polis": "political", "physics": "physical"}


def datasets(laws: list[str], variants: list[str] = ()) -> dict[str, Path]:
    """Every dataset the chosen laws and variants need (made unless finished): the base sets for
    a variant without its own data, the variant's copies (DATA_VARIANTS) otherwise."""
    d = {}
    extra = dict(DATA_VARIANTS.get(v, ("", [])) for v in variants or ["round"])
    for suffix, options in extra.items():
        name = "physics" + suffix
        d[name] = dataset("generate", "physics", DATA / name, "--episodes", "2048",
                          "--frames", "241", "--seed", "0", *SIZE, *options)  # fmt: skip
        # t* late enough for 8 steps of 6 frames of context (the round-level models)
        d[f"{name}_items"] = dataset("items", "physics", DATA / f"{name}_items", "--items", "500",
                                     "--frames", "72", "--t-star-min", "50", "--t-star-max",
                                     "66", "--seed", "1", *SIZE, *options)  # fmt: skip
    for law in laws:
        for suffix, options in extra.items():
            given, name = ["--law", law, *SIZE, *options], law + suffix
            d[name] = dataset("generate", "polis", DATA / name, "--episodes", "2048",
                              "--frames", "241", "--seed", "0", *given)  # fmt: skip
            d[f"{name}_items"] = dataset("items", "polis", DATA / f"{name}_items", "--items",
                                         "500", "--seed", "1", *given)  # fmt: skip
            d[f"{name}_consequence"] = dataset("items", "polis", DATA / f"{name}_consequence",
                                               "--items", "200", "--seed", "4", "--consequence",
                                               *given)  # fmt: skip
        for suffix, options in dict(TRAIN_ONLY[v] for v in variants if v in TRAIN_ONLY).items():
            d[law + suffix] = dataset("generate", "polis", DATA / (law + suffix), "--episodes",
                                      "2048", "--frames", "241", "--seed", "0", "--law", law,
                                      *SIZE, *options)  # fmt: skip
    return d


def train_and_probe(d: dict, variant: str, law: str, seed: int) -> list[Path]:
    """One run and its probes. A political model: on its law's items, with the consequence
    probe; the TWO_BY_TWO models also on the physics items (the 2x2). The physical
    model (one run per seed, whatever the law): on the physics items and on every law's Polis
    items (with the variant's data suffix: `physical-links` on the link sets)."""
    world, diffs = VARIANTS[variant]
    suffix = DATA_VARIANTS.get(variant, ("", []))[0]
    sets, physics = law + suffix, "physics" + suffix
    data = d[physics] if world == "physics" else d[sets]
    if variant in TRAIN_ONLY:
        data = d[law + TRAIN_ONLY[variant][0]]
    tag = variant if world == "physics" else f"{variant}-{law}"
    configs = [*BASE, f"experiments/{MODEL[world]}.yaml", LAW, *diffs]
    ckpt = fit(f"law-{tag}-s{seed}", configs, STEPS, f"--data.path={data}",
               f"--seed_everything={seed}", f"--data.split_seed={seed}")  # fmt: skip
    return [
        probe(ckpt, [d[items]], out, "--name", name, *opts)
        for name, items, opts, out in probe_jobs(variant, law, seed, d)
    ]


def probe_jobs(variant: str, law: str, seed: int, d: dict | None = None) -> list[tuple]:
    """(name, item set key, options, output directory) of every probe of one run; `d` (the
    datasets) only for the consequence set's path in the options."""
    world = VARIANTS[variant][0]
    suffix = DATA_VARIANTS.get(variant, ("", []))[0]
    sets, physics = law + suffix, "physics" + suffix
    tag = variant if world == "physics" else f"{variant}-{law}"
    if world == "physics":
        jobs = [(tag, f"{physics}_items", []),
                (f"{tag} x {law}", f"{sets}_items", ["--cross-world"])]  # fmt: skip
    else:
        consequence = str(d[f"{sets}_consequence"]) if d else f"{sets}_consequence"
        jobs = [(tag, f"{sets}_items", ["--consequence", consequence])]
        if variant in TWO_BY_TWO:
            jobs.append((f"{tag} x physics", f"{physics}_items", ["--cross-world"]))
    return [(*job, PROBES / f"{job[0].replace(' ', '-')}-s{seed}") for job in jobs]


GOAL = {  # law -> the goals for M1, R, Q, HE and the gap to the frame-only observer
    "reciprocity": {"M1": 0.9, "R": 0.9, "Q": 0.9, "HE": 0.8, "gap": 0.1},
    "justice": {"M1": 0.8, "R": 0.8, "Q": 0.8, "HE": 0.6, "gap": 0.2},
}


def goals(report_json: Path, probes: list[Path]) -> str:
    """The issue's goals per (model, items): each named test's mean over seeds [95% CI] and the
    per-seed values; HE; the frame-only observer's M1 and R (the ceiling) and the model's gap to
    it; the dose-response slope (betrayal - trust, on log2 K, mean over seeds, its CI over seeds
    where the probes store the rows, and the number of seeds whose own 95% CI lies above 0); the
    consequence probe's distance and defection effect ratios
    (predicted / true; with the one-step predictions' ratio where the probe has it); the cue
    linear probe R² (random init)."""
    groups = json.loads(report_json.read_text())
    entries: dict[tuple[str, str], list[tuple[dict, dict]]] = {}
    for p in probes:
        run_ = json.loads((p / "metrics.json").read_text())
        for e in run_["items"]:
            world = e["world"] + (f"/{e['law']}" if e.get("law") else "")
            entries.setdefault((run_["model"]["name"], world), []).append((run_, e))
    rows = []
    for key, g in groups.items():
        name, _, items = key.split(" / ")
        law = items.split("/")[-1]
        mine = entries.get((name, items), [])
        # the physical model's goal is M1 at chance (its CI covers 0.5), not the political goals
        physical = name.startswith("physical")
        goal = {} if physical else GOAL.get(law, {})
        cells = [name, items, str(g["seeds"])]
        for test in ("M1", "R", "Q", "M1C", "M2", "teleport"):
            c = g["comparisons"].get(test)
            if not c:
                cells.append("–")
                continue
            per = [e["scorers"]["model"]["comparisons"][test]["max"]["paired_accuracy"]
                   for _, e in mine if test in e["scorers"]["model"]["comparisons"]]  # fmt: skip
            mark = _mark(c["paired_accuracy"], c["ci"][0], goal.get(test), 0.5)
            if physical and test == "M1":
                mark = " ✓ (chance)" if c["ci"][0] <= 0.5 <= c["ci"][1] else " ✗ (not at chance)"
            seeds = ", ".join(f"{v:.2f}" for v in per)
            cells.append(f"{c['paired_accuracy']:.2f} [{c['ci'][0]:.2f}, {c['ci'][1]:.2f}] "
                         f"({seeds}){mark}")  # fmt: skip
        for key in ("history_effect", "history_effect_m1"):
            he = g.get(key)
            goal_he = goal.get("HE") if key == "history_effect" else None
            mark = _mark(he["value"], he["ci"][0], goal_he, 0.5) if he else ""
            cells.append(f"{he['value']:.2f} [{he['ci'][0]:.2f}, {he['ci'][1]:.2f}] "
                         f"({', '.join(f'{v:.2f}' for v in he['per_seed'])}){mark}"
                         if he else "–")  # fmt: skip
        for test in ("M1", "R"):
            fo = g["comparisons"].get(test, {}).get("baselines", {}).get("frame_only")
            model = g["comparisons"].get(test, {}).get("paired_accuracy")
            ok = "" if fo is None or "gap" not in goal else (
                " ✓" if fo - model <= goal["gap"] else " ✗")  # fmt: skip
            cells.append(f"{fo:.2f} (gap {fo - model:+.2f}){ok}" if fo is not None else "–")
        slopes = [e["scorers"]["model"].get("dose_slope", {}).get("max") for _, e in mine]
        slopes = [s for s in slopes if s and s.get("slope") is not None]
        rising = sum(s["ci"][0] > 0 for s in slopes)
        # the CI over seeds (seeds, then groups, as the tests'), for probes that store the rows
        over = (g.get("dose_slope") or {}).get("ci")
        over = (f" [{over[0]:+.3f}, {over[1]:+.3f}]" + (" ✓" if over[0] > 0 else " ✗")
                if over and len(slopes) > 1 else "")  # fmt: skip
        cells.append(f"{np.mean([s['slope'] for s in slopes]):+.3f}{over} ({rising}/{len(slopes)})"
                     if slopes else "–")  # fmt: skip
        # the references: the frame-only observer infers A's disposition from the K rounds it
        # sees (its slope is that inference); the ideal observer knows it (the law's own slope)
        refs = [mine[0][1]["scorers"].get(k, {}).get("dose_slope", {}).get("max") if mine else None
                for k in ("frame_only", "ideal_observer")]  # fmt: skip
        cells.append(" / ".join(f"{r['slope']:+.3f}" if r and r.get("slope") is not None
                                else "–" for r in refs))  # fmt: skip
        for target in ("distance_to_ego", "partner_defects"):
            blocks = [r["consequence"]["model"][target] for r, _ in mine if r.get("consequence")]
            ratios = [b["effect_ratio"] for b in blocks if b["effect_ratio"] is not None]
            # the one-step predictions' ratio (from real frames; probes since it exists)
            taught = [b["one_step_ratio"] for b in blocks if b.get("one_step_ratio") is not None]
            cell = f"{np.mean(ratios):.2f} ({', '.join(f'{v:.2f}' for v in ratios)})"
            cell += f"; one-step {np.mean(taught):.2f}" if taught else ""
            cells.append(cell if ratios else "–")
        cue = [e.get("linear_probes", {}).get("targets", {}).get("cues") for _, e in mine]
        cue = [c for c in cue if c]
        cells.append(
            f"{np.mean([c['model'] for c in cue]):.2f} "
            f"({np.mean([c['random_init'] for c in cue]):.2f})"
            if cue
            else "–"
        )
        rows.append(cells)
    header = ["model", "items", "seeds", "M1", "R", "Q", "M1C", "M2", "teleport", "HE",
              "M1 + M1C − 1",
              "frame-only M1", "frame-only R", "dose slope (CI > 0)",
              "dose slope: frame-only / ideal observer", "consequence: distance ratio",
              "consequence: defection ratio", "cues R² (random)"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def _mark(value: float, low: float, goal: float | None, null: float) -> str:
    """✓ when a value meets its goal with a CI lower bound above `null`, ✗ otherwise."""
    if goal is None:
        return ""
    return " ✓" if value >= goal and low > null else " ✗"


HOBBESIAN_EPISODES = 256  # the hobbesian rates: a fresh simulation (no training set of it)


def base_rates_table() -> str:
    """The base rate of every event type (DESIGN 3.3) under each law: the civilized rates read
    from the study's training sets' manifests (written by `pwm generate`), the hobbesian ones
    from a 256-episode simulation of the same length (seed 0: the same numbers every time)."""
    from data_gen import polis
    from data_gen.polis_cli import EVENTS, base_rates
    from data_gen.polis_config import PolisConfig

    rows = []
    for law in LAWS:
        manifest = DATA / law / "manifest.json"
        if manifest.exists():
            r = json.loads(manifest.read_text())["base_rates"]["civilized"]
            rows.append((law, "civilized", f"training set {DATA / law} (2,048 episodes)", r))
        cfg = PolisConfig(law=law, population="hobbesian", frames=240, image_size=0)
        tr = polis.run(cfg, polis.draw_scenario(cfg, np.random.default_rng(0),
                                                HOBBESIAN_EPISODES))  # fmt: skip
        r = base_rates(tr["event"], tr["hobbesian"].astype(bool))["hobbesian"]
        rows.append((law, "hobbesian", f"simulation, {HOBBESIAN_EPISODES} episodes, seed 0", r))
    head = ["law", "population", "source", *(e.replace("_", " ") for e in EVENTS), "actions"]
    lines = ["# Base rates of the event types under each law (DESIGN 3.3)", "",
             "Share of executed actions of each type; `law_study.py --part report` writes this.",
             "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]  # fmt: skip
    for law, pop, src, r in rows:
        lines.append(f"| {law} | {pop} | {src} | "
                     + " | ".join(f"{r[e]:.3f}" for e in EVENTS) + f" | {r['n']:,} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def report(command: str) -> None:
    """`pwm report` over every finished probe -> runs/law-probes/REPORT.md, and the curated copy
    (REPORT, GOALS, PROVENANCE, per-run metrics.md and gzipped metrics.json) under RESULTS."""
    probes = sorted(p.parent for p in PROBES.glob("*/metrics.json"))
    if not probes:
        raise SystemExit(f"no finished probes under {PROBES}: run --part fit first")
    out = report_and_curate(probes, PROBES, RESULTS)
    (RESULTS / "BASE_RATES.md").write_text(base_rates_table())
    (RESULTS / "GOALS.md").write_text(
        "# The social-law issue's goals, measured\n\nPaired accuracy with the max aggregator, "
        "mean over seeds [95% hierarchical bootstrap CI] (per seed); ✓/✗: the issue's goal for "
        "the items' law (value and CI lower bound > 0.5). See experiments/law_study.py::goals "
        "for every column; the physical model's mark on M1 is the issue's goal for it, a CI "
        "covering 0.5.\n\n" + goals(PROBES / "REPORT.json", probes)
    )
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (RESULTS / "PROVENANCE.md").write_text(
        f"# Provenance\n\nMade by `{command}` on {when}; {len(probes)} probe runs (each run's "
        "commit, command and inputs: REPORT.md's Provenance section and REPORT_provenance.json): "
        f"{', '.join(p.name for p in probes)}.\n"
    )
    print(out.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", nargs="+", choices=("data", "fit", "report", "curate"),
                   default=["data", "fit", "report"])  # fmt: skip
    p.add_argument("--laws", nargs="+", choices=LAWS, default=list(LAWS))
    p.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=["round"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    launcher.add_arguments(p)
    args = p.parse_args()
    launcher.main(sys.modules[__name__], lambda: study(args), args, keep_data="data" in args.part)


def study(args) -> None:
    """The parts asked for (every step skips what is finished: runner.py). `curate` copies the
    chosen runs' finished probes under RESULTS/runs without remaking the REPORT (for a checkout
    that lacks the earlier probes the REPORT and GOALS are made from)."""
    if args.part == ["curate"]:
        found = [out for seed in args.seeds for variant in args.variants for law in args.laws
                 for *_, out in probe_jobs(variant, law, seed)
                 if (out / "metrics.json").exists()]  # fmt: skip
        curate(sorted(set(found)), RESULTS)
        print("\n".join(f"- curated {p.name}" for p in sorted(set(found))))
        return
    d = datasets(args.laws, args.variants)
    if "fit" in args.part:
        for seed in args.seeds:
            for variant in args.variants:
                for law in args.laws:
                    train_and_probe(d, variant, law, seed)
    if "report" in args.part:
        keys = ("part", "laws", "variants", "seeds")
        report("python experiments/law_study.py " + " ".join(
            f"--{k} {' '.join(map(str, getattr(args, k)))}" for k in keys))  # fmt: skip


if __name__ == "__main__":
    main()
