"""`pwm probe --ckpt CKPT --items DIR [--items DIR ...] --out DIR` (DESIGN 6).

Writes OUT/metrics.json (everything, see pwm/probes/__init__.py for the schema), OUT/metrics.md
(the tables) and OUT/*.png (the surprise curves around t*, one titled panel per comparison with
its two sides; the dose-response curve; the linear-probe bars). Settings come from one file
(`--config`, default experiments/voe.yaml).
`--calib DIR` and `--probe-data DIR` (each a dataset of one world, repeatable) replace the
plausible items as the calibration set and the item set as the linear-probe data for that
world; `--consequence DIR` runs the consequence probe on a counterfactual set; `--wandb` logs the
figures and headline numbers to an offline wandb run in OUT/wandb. Bad input is one line on
stderr and exit code 2 (ProbeError, raised at the boundary). metrics.json ends with a
`provenance` block (pwm/provenance.py): this probe's command, commit, versions and machine, the
manifest sha256 of every dataset it read, and the checkpoint's sha256 with the provenance of the
run that trained it, so a committed probe folder says what made every number in it.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch

from pwm import __version__, progress, provenance
from pwm.console import DefaultsHelpFormatter
from pwm.data.format import open_dataset
from pwm.probes import plots
from pwm.probes.checkpoint import check_dataset, load_checkpoint, random_model
from pwm.probes.config import ProbeError, load_config
from pwm.probes.consequence import consequence_probe, read_pairs, usable_pairs
from pwm.probes.items import open_items
from pwm.probes.markdown import fmt, probe_report
from pwm.probes.pipeline import Runner, probe_items, validate

# the repository's probe settings, wherever pwm is run from (not the current directory's)
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "experiments" / "voe.yaml"
# what `pwm probe` writes into --out; --overwrite replaces exactly these
OUTPUTS = ("metrics.json", "metrics.md", "curves_*.png", "dose_*.png", "probes_*.png", "wandb")


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise ProbeError(message)  # pwm/cli.py prints it as `pwm probe: error: ...`


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="pwm probe", description="VoE surprise, baselines and linear probes of a "
               "checkpoint -> OUT/metrics.json, OUT/metrics.md, OUT/*.png",
               formatter_class=DefaultsHelpFormatter)  # fmt: skip
    p.add_argument("--ckpt", required=True, metavar="CKPT", help="a pwm Lightning checkpoint")
    p.add_argument("--items", action="append", required=True, metavar="DIR",
                   help="item set made by `pwm items` (repeatable)")  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory (absent or empty, unless --overwrite)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true",
                   help="replace the probe results (metrics, figures) in --out")  # fmt: skip
    p.add_argument("--config", default=str(DEFAULT_CONFIG),
                   help="probe settings (YAML); default: experiments/voe.yaml of pwm's "
                   "repository, wherever pwm runs")  # fmt: skip
    p.add_argument("--name", help="model label; runs with one name are seeds (default: world-obs)")
    p.add_argument("--calib", action="append", default=[], metavar="DIR",
                   help="held-out dataset of a world: mu, sigma from it (repeatable)")  # fmt: skip
    p.add_argument("--probe-data", action="append", default=[], metavar="DIR",
                   help="dataset of a world for the linear probes (repeatable)")  # fmt: skip
    p.add_argument("--consequence", metavar="DIR", help="counterfactual set (consequence probe)")
    p.add_argument("--cross-world", action="store_true", help="allow items of another world")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-size", type=int, default=256,
                   help="distinct frames per encoder call and context windows per "
                        "predictor call (each encoded or predicted once)")  # fmt: skip
    p.add_argument("--wandb", action="store_true", help="also log figures to an offline wandb run")
    return p


def by_world(paths: list[str], flag: str) -> dict:
    """Datasets keyed by world; two of one world is an error."""
    out = {}
    for path in paths:
        ds = open_dataset(path)
        if ds.world in out:
            raise ProbeError(f"two {flag} datasets of world {ds.world!r}")
        out[ds.world] = ds
    return out


def jsonable(obj):
    """numpy -> Python; NaN and infinities -> None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def creatable(path: Path) -> bool:
    """Whether `path` is a directory or could be made one: its nearest existing ancestor is a
    directory (not a file), so a refusal comes before the work, not after it."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return path.is_dir()


def check_out(out: Path, overwrite: bool) -> list[Path]:
    """Refuse an --out that is a file, or that holds anything, unless --overwrite; with it,
    return the earlier probe's files to remove (only once every check has passed)."""
    if not creatable(out):
        raise ProbeError(f"--out {out} exists and is not a directory, or lies under a file")
    present = sorted(out.iterdir()) if out.is_dir() else []
    if not present:
        return []
    if not overwrite:
        what = "a probe run" if (out / "metrics.json").exists() else "files"
        raise ProbeError(f"--out {out} already holds {what}; pass --overwrite to replace it")
    return sorted({f for pattern in OUTPUTS for f in out.glob(pattern)})


def pick_device(name: str) -> str:
    """--device checked against this machine: `auto` is cuda if there is one, else cpu."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ProbeError(
            f"--device {name!r} is not a device (auto, cpu, cuda, cuda:1, ...)"
        ) from None
    if device.type == "cpu":
        return name
    if device.type != "cuda":
        raise ProbeError(f"--device {name!r}: pwm probes on cpu or cuda")
    if not torch.cuda.is_available():
        raise ProbeError(f"--device {name}: this machine has no CUDA device (use cpu or auto)")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ProbeError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return name


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_config(args.config)
    if args.batch_size < 1:
        raise ProbeError(f"--batch-size must be >= 1, got {args.batch_size}")
    device = pick_device(args.device)
    out = Path(args.out)
    stale = check_out(out, args.overwrite)
    module = load_checkpoint(args.ckpt)
    hp = dict(module.hparams)
    context = cfg.context or hp["history"]
    if context > hp["window"]:
        raise ProbeError(f"context {context} exceeds the model's training window {hp['window']}")
    items = [open_items(d) for d in args.items]
    calib, probe_data = by_world(args.calib, "--calib"), by_world(args.probe_data, "--probe-data")
    consequence = open_dataset(args.consequence) if args.consequence else None
    for it in items:  # everything checkable is checked before any work or output
        validate(Runner(module, hp, cfg, context), it, args.cross_world)
    for flag, by in (("--calib", calib), ("--probe-data", probe_data)):
        for ds in by.values():
            check_dataset(hp, ds, flag)
    if consequence is not None:
        skip = int(hp.get("frame_skip", 1) or 1)
        usable_pairs(read_pairs(consequence, hp), consequence, context, cfg, skip)
    for path in stale:  # --overwrite: the earlier probe's results go, nothing else
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or f"{hp['world']}-{hp['observation']}"
    metrics = {
        "pwm_version": __version__,
        "config": cfg.as_dict(),
        "model": {
            "name": name,
            "checkpoint": Path(args.ckpt).name,
            "world": hp["world"],
            "observation": hp["observation"],
            "history": hp["history"],
            "context": context,
            "parameters": sum(p.numel() for p in module.parameters()),
        },
        "items": [],
    }
    with progress.bar() as bar:  # one bar per model pass, under one per item set
        runner = Runner(module, hp, cfg, context, device, args.batch_size, bar)
        overall = bar.add_task(f"pwm probe {name}", total=len(items) + (consequence is not None))
        seen = {}
        for it in items:
            bar.update(overall, description=f"pwm probe {name}: {it.name}")
            entry = probe_items(
                runner, it, args.cross_world, calib.get(it.world), probe_data.get(it.world)
            )
            n = seen[it.name] = seen.get(it.name, 0) + 1
            entry["name"] = it.name if n == 1 else f"{it.name}-{n}"
            metrics["items"].append(entry)
            bar.advance(overall)
        if consequence is not None:
            bar.update(overall, description=f"pwm probe {name}: consequence")
            metrics["consequence"] = {
                who: consequence_probe(m, consequence, context, cfg, device, bar)
                for who, m in (("model", module), ("random_init", random_model(hp, cfg.seed)))
            }
    datasets = [(f, d) for f in ("items", "calib", "probe_data") for d in getattr(args, f)]
    datasets += [("consequence", args.consequence)] if args.consequence else []
    metrics["provenance"] = {
        **provenance.collect(
            argv=["pwm", "probe", *argv],
            inputs={f"{f.replace('_', '-')}:{provenance.relative(d)}": d for f, d in datasets},
        ),
        "checkpoint": provenance.checkpoint_record(args.ckpt),
    }
    metrics = jsonable(metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (out / "metrics.md").write_text(probe_report(metrics))
    pairs = zip(metrics["items"], items, strict=True)
    figures = draw(metrics, {e["name"]: it.meta["comparisons"] for e, it in pairs}, out)
    if args.wandb:
        log_wandb(metrics, figures, out)
    head = [f"{e['name']}: headline {fmt(e['scorers']['model']['headline'])}"
            for e in metrics["items"]]  # fmt: skip
    print(
        f"pwm probe: wrote {out / 'metrics.json'}, metrics.md, {len(figures)} figures; "
        + "; ".join(head)
    )
    return 0


def draw(metrics: dict, comparisons: dict[str, list[dict]], out: Path) -> list[Path]:
    """Every figure of a probe run; returns their paths. `comparisons` {item set name: its
    items.json comparisons} (which conditions each comparison sets against which)."""
    figs, primary = [], metrics["config"]["primary"]
    for e in metrics["items"]:
        c = e["curves"]
        by = e["scorers"]["model"]["comparisons"]
        acc = {k: (v[primary]["paired_accuracy"], v[primary]["ci"]) if v[primary]["ci"] else None
               for k, v in by.items()}  # fmt: skip
        figs.append(
            plots.comparison_curves(
                c["model"],
                c["tau"],
                comparisons[e["name"]],
                acc,
                metrics["config"]["window"],
                f"{metrics['model']['name']} on {e['name']}",
                out / f"curves_{e['name']}.png",
            )
        )
        dose = e["scorers"]["model"]["dose_response"]
        if dose:
            figs.append(
                plots.dose_response(
                    dose, primary, f"dose-response, {e['name']}", out / f"dose_{e['name']}.png"
                )
            )
        probes = e.get("linear_probes", {}).get("targets")
        if probes:
            figs.append(
                plots.probe_bars(
                    probes, f"linear probes, {e['name']}", out / f"probes_{e['name']}.png"
                )
            )
    return figs


def log_wandb(metrics: dict, figures: list[Path], out: Path) -> None:
    """Figures and headline numbers into an offline wandb run under OUT/wandb."""
    import wandb

    run = wandb.init(
        project="pwm",
        job_type="probe",
        name=metrics["model"]["name"],
        dir=str(out),
        mode="offline",
        config=metrics["config"],
    )
    summary = {}
    for e in metrics["items"]:
        summary[f"probe/{e['name']}/headline"] = e["scorers"]["model"]["headline"]
        if "verdict" in e["scorers"]["model"]:
            summary[f"probe/{e['name']}/betrayal_voe"] = e["scorers"]["model"]["verdict"]["claimed"]
    run.log({**{f"probe/{f.stem}": wandb.Image(str(f)) for f in figures}, **summary})
    run.finish()
