"""`pwm report RUN_DIR ... --out REPORT.md`: aggregate `pwm probe` runs into one report.

Runs are grouped by (model name, item world): the runs of one group are training seeds of one
model (`pwm probe --name` sets the name). Per group and comparison (primary aggregator): the
mean paired accuracy over seeds with a hierarchical bootstrap 95% CI (seeds, then pairs), the
mean chance band, how many seeds pass alone, and the group's pass flag (CI lower bound > 0.5 and
mean accuracy above the mean chance band's upper edge); the betrayal verdict (M1, R, Q) on those
flags; the baselines' mean accuracies; the linear probes' mean scores. Figures beside the
report: REPORT_tests.png, every model's named tests with CIs over the chance band and beside the
frame-only observer (pwm/probes/summary.py, plots.named_tests: one row per model, so it reads at
any number of models), and, for reports of at most HEATMAP_MAX_MODELS models, the heat map that
crosses models (rows, labelled with their training world) with item worlds (columns): each cell
is the world's headline (mean paired accuracy over `headline` comparisons), so a physical and a
political model on physical and political items give the 2x2 design of DESIGN 1. A last
section (pwm/probes/provenance_report.py) says which commits made the runs and flags the runs
whose code or datasets differ from the report's; its JSON is REPORT_provenance.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pwm import progress
from pwm.console import DefaultsHelpFormatter
from pwm.probes import metrics as M
from pwm.probes import plots, provenance_report, summary
from pwm.probes.cli import Parser, creatable, jsonable
from pwm.probes.config import ProbeError
from pwm.probes.markdown import BASELINES, ci, fmt, table

HEATMAP_MAX_MODELS = 8  # the headline heat map is drawn for reports of at most this many models


def load_runs(dirs: list[str]) -> list[dict]:
    for d in dirs:  # every path checked before any is read
        if not (Path(d) / "metrics.json").is_file():
            raise ProbeError(f"{d} has no metrics.json: not a `pwm probe` output directory")
    runs = []
    with progress.bar() as bar:
        task = bar.add_task("pwm report: reading probe runs", total=len(dirs))
        for d in dirs:
            path = Path(d) / "metrics.json"
            try:
                run = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ProbeError(f"{path} is not valid JSON ({getattr(e, 'msg', e)})") from None
            check_run(run, path)
            runs.append(run)
            bar.advance(task)
    return runs


def check_run(run, path: Path) -> None:
    """The top of a probe run's metrics.json, as the report reads it; ProbeError if not."""
    model = run.get("model") if isinstance(run, dict) else None
    items = run.get("items") if isinstance(run, dict) else None
    config = run.get("config") if isinstance(run, dict) else None
    ok = (
        isinstance(model, dict)
        and all(isinstance(model.get(k), str) for k in ("name", "world"))
        and isinstance(config, dict)
        and isinstance(config.get("primary"), str)
        and isinstance(items, list)
        and all(isinstance(e, dict) and isinstance(e.get("world"), str) and
                isinstance(e.get("scorers"), dict) for e in items)
    )  # fmt: skip
    if not ok:
        raise ProbeError(f"{path} is not a `pwm probe` metrics.json (model, config, items)")


def report_files(out: Path) -> list[Path]:
    """Every file `pwm report --out OUT` writes."""
    siblings = ("_provenance.json", "_tests.png", "_heatmap.png")
    return [out, out.with_suffix(".json"), *[out.with_name(out.stem + s) for s in siblings]]


def group_runs(runs: list[dict]) -> dict:
    """{(model name, model world, item world): [(run config, item entry), ...]}; the item world
    of Polis items made under the law option names it (`polis/reciprocity`)."""
    groups = {}
    for run in runs:
        m = run["model"]
        for entry in run["items"]:
            world = entry["world"] + (f"/{entry['law']}" if entry.get("law") else "")
            groups.setdefault((m["name"], m["world"], world), []).append((run, entry))
    return groups


def summarise(members: list[tuple[dict, dict]]) -> dict:
    """One group's comparisons, verdict, headline, baselines and linear probes."""
    cfg = members[0][0]["config"]
    primary, level = cfg["primary"], cfg["ci_level"]
    first = members[0][1]["scorers"]["model"]["comparisons"]
    comps = {}
    for i, name in enumerate(first):
        blocks = [
            e["scorers"]["model"]["comparisons"].get(name, {}).get(primary) for _, e in members
        ]
        blocks = [b for b in blocks if b]
        accs = [b["paired_accuracy"] for b in blocks if b["paired_accuracy"] is not None]
        mean = float(np.mean(accs)) if accs else None
        interval = M.seed_bootstrap_ci(
            [np.asarray(b["outcomes"]) for b in blocks],
            level,
            cfg["bootstrap_resamples"],
            cfg["seed"] + i,
        )
        bands = [b["chance_band"] for b in blocks if b.get("chance_band")]
        band = (
            [float(np.mean([b[k] for b in bands if b[k] is not None])) for k in (0, 1)]
            if bands
            else None
        )
        dz = [b["d_z"] for b in blocks if b["d_z"] is not None]
        comps[name] = {
            "seeds": len(blocks),
            "paired_accuracy": mean,
            "ci": list(interval),
            "chance_band": band,
            "seed_passes": sum(bool(b["pass"]) for b in blocks),
            "pass": M.passes(
                mean if mean is not None else float("nan"), interval[0], band[1] if band else None
            ),
            "d_z": float(np.mean(dz)) if dz else None,
            "baselines": {
                b: _mean(
                    e["scorers"][b]["comparisons"][name][primary]["paired_accuracy"]
                    for _, e in members
                    if b in e["scorers"]
                )
                for b in BASELINES
            },
        }
    world = members[0][1]["world"]
    heads = [comps[c]["paired_accuracy"] for c in cfg["headline"].get(world, []) if c in comps]
    out = {"comparisons": comps, "headline": _mean(heads), "seeds": len(members)}
    law = sorted({e.get("law") for _, e in members if e.get("law")})
    if law:
        out["law"] = ", ".join(law)
        trained = sorted({e["model_law"] for _, e in members if e.get("law_mismatch")})
        if trained:
            out["law_mismatch"] = f"trained on {', '.join(trained)}, probed on {out['law']}"
    for key in ("history_effect", "history_effect_m1"):
        he = history_summary(members, primary, level, cfg, key)
        if he:
            out[key] = he
    slopes = [e["scorers"]["model"].get("dose_slope", {}).get(primary) for _, e in members]
    slopes = [v for v in slopes if v and v.get("slope") is not None]
    if slopes:
        ds = {"mean": float(np.mean([v["slope"] for v in slopes])),
              "per_seed": [v["slope"] for v in slopes],
              "seeds_ci_above_0": sum(bool(v["ci"][0] > 0) for v in slopes)}  # fmt: skip
        if all("diff" in v for v in slopes):  # a CI over seeds, as the tests get (seeds, groups)
            ds["ci"] = list(M.seed_bootstrap_slope_ci(slopes, level, cfg["bootstrap_resamples"],
                                                      cfg["seed"]))  # fmt: skip
        out["dose_slope"] = ds
    if all(t in comps for t in cfg["betrayal_tests"]):
        out["verdict"] = M.betrayal_verdict(
            {t: comps[t]["pass"] for t in cfg["betrayal_tests"]}, cfg["betrayal_tests"]
        )
    probes = {}
    for _, e in members:
        for target, t in e.get("linear_probes", {}).get("targets", {}).items():
            row = probes.setdefault(target, {"metric": t["metric"], "model": [], "random_init": []})
            row["model"].append(t["model"])
            row["random_init"].append(t["random_init"])
    out["linear_probes"] = {
        k: {**v, "model": _mean(v["model"]), "random_init": _mean(v["random_init"])}
        for k, v in probes.items()
    }
    return out


def history_summary(
    members: list, primary: str, level: float, cfg: dict, key: str = "history_effect"
) -> dict:
    """A history effect (`key`: HE = M2 + R - 1, or M1 + M1C - 1) over seeds: the mean, a
    hierarchical CI (seeds, then groups), the mean chance band and per-seed values, for the model
    and the mean of each baseline."""
    blocks = [e["scorers"]["model"].get(key, {}).get(primary) for _, e in members]
    blocks = [b for b in blocks if b]
    if not blocks:
        return {}
    interval = M.seed_bootstrap_ci(
        [np.asarray(b["outcomes"]) for b in blocks], level, cfg["bootstrap_resamples"], cfg["seed"]
    )
    bands = [b["chance_band"] for b in blocks if b.get("chance_band")]
    band = [float(np.mean([b[k] for b in bands])) for k in (0, 1)] if bands else None
    value = float(np.mean([b["value"] for b in blocks]))
    return {
        "value": value,
        "ci": list(interval),
        "chance_band": band,
        "per_seed": [b["value"] for b in blocks],
        "pass": M.passes(value, interval[0], band[1] if band else None, null=0.0),
        "baselines": {
            b: _mean(
                e["scorers"][b].get(key, {}).get(primary, {}).get("value")
                for _, e in members
                if b in e["scorers"]
            )
            for b in BASELINES
        },
    }


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def render(groups: dict, summaries: dict, figures: list[str], primary: str, grid: tuple) -> str:
    lines = [
        "# pwm report",
        "",
        f"Paired accuracy with the primary aggregator ({primary}); CIs are 95% hierarchical "
        "bootstraps over training seeds, then pairs. A comparison passes when the CI lower "
        "bound is above 0.5 and the mean accuracy is above the mean chance band.",
        "",
        *(f"![{Path(f).stem.split('_')[-1]}]({f})\n" for f in figures),
    ]
    rows, cols, values = grid
    cells = [[r, *(fmt(float(v)) for v in row)] for r, row in zip(rows, values, strict=True)]
    lines += ["Headline: mean paired accuracy over each item world's headline comparisons.", ""]
    lines += [*table(["model", *(f"{c} items" for c in cols)], cells), ""]
    for (name, mworld, iworld), s in summaries.items():
        lines += [f"## {name} (trained on {mworld}) on {iworld} items — {s['seeds']} seed(s)", ""]
        if s.get("law"):
            warn = f" **Law mismatch: {s['law_mismatch']}.**" if s.get("law_mismatch") else ""
            lines += [f"Law of the items: `{s['law']}`.{warn}", ""]
        if "verdict" in s:
            v = s["verdict"]
            tests = ", ".join(f"{t} {'pass' if ok else 'fail'}" for t, ok in v["tests"].items())
            lines += [f"**Betrayal VoE claimed: {fmt(v['claimed'])}** ({tests}).", ""]
        header = [
            "comparison",
            "seeds",
            "accuracy [95% CI]",
            "chance band",
            "pass",
            "seeds pass",
            "d_z",
            *BASELINES,
        ]
        rows = [
            [
                c,
                str(r["seeds"]),
                f"{fmt(r['paired_accuracy'])} {ci(r['ci'])}",
                ci(r["chance_band"]),
                fmt(r["pass"]),
                f"{r['seed_passes']}/{r['seeds']}",
                fmt(r["d_z"]),
                *(fmt(r["baselines"][b]) for b in BASELINES),
            ]
            for c, r in s["comparisons"].items()
        ]
        lines += [*table(header, rows), ""]
        for key, what in (("history_effect", "HE = M2 + R − 1"),
                          ("history_effect_m1", "M1 + M1C − 1")):  # fmt: skip
            if s.get(key):
                h = s[key]
                base = ", ".join(
                    f"{b} {fmt(v)}" for b, v in h["baselines"].items() if v is not None
                )
                per = ", ".join(fmt(v) for v in h["per_seed"])
                lines += [
                    f"History effect {what}: {fmt(h['value'])} {ci(h['ci'])} (seeds: {per}; "
                    f"chance band {ci(h['chance_band'])}; pass {fmt(h['pass'])}); {base}.",
                    "",
                ]
        if s.get("dose_slope"):
            d = s["dose_slope"]
            over = f" [{fmt(d['ci'][0], 3)}, {fmt(d['ci'][1], 3)}]" if d.get("ci") else ""
            lines += [
                f"Dose-response slope (betrayal − trust→C on log2 K, K inside the context): mean "
                f"{fmt(d['mean'], 3)}{over} (seeds: "
                f"{', '.join(fmt(v, 3) for v in d['per_seed'])}; CI above 0 at "
                f"{d['seeds_ci_above_0']} of {len(d['per_seed'])}).",
                "",
            ]
        if s["linear_probes"]:
            rows = [
                [t, v["metric"], fmt(v["model"]), fmt(v["random_init"])]
                for t, v in s["linear_probes"].items()
            ]
            lines += [
                "Linear probes (mean over seeds):",
                "",
                *table(["target", "metric", "model", "random init"], rows),
                "",
            ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = Parser(prog="pwm report", description="aggregate `pwm probe` runs into one report",
               formatter_class=DefaultsHelpFormatter)  # fmt: skip
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="`pwm probe` output directories")
    p.add_argument("--out", required=True, help="report file (markdown); its figures go beside it")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.is_dir() or not creatable(out.parent):
        raise ProbeError(f"--out {out} must be a file path in a directory")
    if (done := [f for f in report_files(out) if f.exists()]) and not args.overwrite:
        raise ProbeError(f"--out {out}: {done[0]} exists; pass --overwrite to replace the report")
    runs = load_runs(args.runs)
    groups = group_runs(runs)
    with progress.bar() as bar:
        task = bar.add_task("pwm report: model x item groups", total=len(groups))
        summaries = {}
        for k, v in groups.items():
            try:
                summaries[k] = summarise(v)
            except ProbeError:
                raise
            except (KeyError, TypeError, IndexError, ValueError) as e:
                raise ProbeError(
                    f"the probe runs of {' / '.join(k)} cannot be summarised ({type(e).__name__}: "
                    f"{e}): a metrics.json of another pwm version, or edited"
                ) from None
            bar.advance(task)
    models = list(dict.fromkeys((k[0], k[1]) for k in summaries))
    worlds = sorted({k[2] for k in summaries})
    heads = [[summaries.get((n, w, iw), {}).get("headline") for iw in worlds] for n, w in models]
    values = np.array([[np.nan if h is None else h for h in row] for row in heads], dtype=float)
    for f in report_files(out):  # --overwrite: the old report goes whole, not half
        f.unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    labels = [f"{n} ({w})" for n, w in models]
    figures = []
    if blocks := summary.figure_blocks(summaries):
        figures.append(plots.named_tests(blocks, out.with_name(out.stem + "_tests.png")))
    if len(models) <= HEATMAP_MAX_MODELS:  # beyond, a strip no one can read: the tests figure
        heat = out.with_name(out.stem + "_heatmap.png")
        figures.append(plots.heatmap(values, labels, worlds, "headline", heat))
    grid = (labels, worlds, values)
    lineage = provenance_report.summarise(args.runs, runs)
    text = render(groups, summaries, [f.name for f in figures], runs[0]["config"]["primary"], grid)
    out.write_text(text + "\n" + "\n".join(provenance_report.lines(lineage)))
    out.with_name(out.stem + "_provenance.json").write_text(json.dumps(lineage, indent=1))
    (out.with_suffix(".json")).write_text(
        json.dumps(jsonable({" / ".join(k): v for k, v in summaries.items()}), indent=1)
    )
    print(f"pwm report: {len(runs)} runs, {len(summaries)} model x item groups -> {out}")
    return 0
