"""Re-runnable experiment steps shared by `make demo` and `make reproduce`.

Every step checks for its finished output first and skips when it is there, so a pipeline can be
re-run after an interruption and never silently overwrites a finished result:

- a dataset / item set is finished when its manifest exists; an unfinished one (killed run) is
  resumed by re-running the same command (the generator keeps finished shards). A kept dataset
  is named with the commit that generated it (its provenance.json), with a warning when its
  recorded command differs from the one asked for (stale data made by other options);
- a training run `runs/<name>/version_0` is finished when its `last.ckpt` has reached max_steps;
  an unfinished one is resumed with `--ckpt_path last` (bit-identical to an uninterrupted run);
- a probe is finished when its `metrics.json` exists.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import time
from pathlib import Path

PWM = [sys.executable, "-m", "pwm.cli"]


def run(args: list[str]) -> None:
    """Run one `pwm` command, echoing it; stop the pipeline if it fails."""
    print("$ pwm " + " ".join(args), flush=True)
    t0 = time.time()
    code = subprocess.run([*PWM, *args]).returncode
    if code:
        raise SystemExit(f"step failed (exit {code}): pwm {' '.join(args)}")
    print(f"  ({time.time() - t0:.0f} s)", flush=True)


def dataset(command: str, world: str, out: Path, *options: str, strict: bool = False) -> Path:
    """`pwm generate|items WORLD --out OUT ...` unless OUT is already a finished dataset. A kept
    dataset made by other options is a warning, or with `strict` a one-line exit (code 2): a
    caller whose later steps would silently reuse runs trained on it (the demo) asks for that."""
    if (out / "manifest.json").exists():
        from pwm import provenance  # here: it imports lightning (seconds), which a job need not

        made = provenance.dataset_record(out)["generated_by"]
        if made == provenance.NONE_RECORDED:
            print(f"- {out}: exists, kept ({made})")
        else:
            dirty = " with uncommitted changes" if made[0]["dirty"] is True else ""
            print(f"- {out}: exists, kept (generated at {made[0]['commit'][:7]}{dirty})")
            asked = ["pwm", command, world, "--out", str(out), *options]
            if _options(made[0]["argv"]) != _options(asked):
                said = (f"{out} was made by `{' '.join(made[0]['argv'])}`, not "
                        f"`{' '.join(asked)}`: delete it to make it anew")  # fmt: skip
                if strict:
                    print(f"error: {said}", file=sys.stderr)
                    raise SystemExit(2)
                print(f"  warning: {said}")
    else:
        run([command, world, "--out", str(out), *options])
    return out


def _options(argv: list[str]) -> list[str]:
    """A generation command's options that decide its bytes: without --out and the job split."""
    tokens = [t for a in argv for t in a.split("=", 1)]
    skip = {"--out": 1, "--workers": 1, "--shard": 1, "--num-shards": 1, "--overwrite": 0}
    kept, i = [], 0
    while i < len(tokens):
        if tokens[i] in skip:
            i += 1 + skip[tokens[i]]
            continue
        kept.append(tokens[i])
        i += 1
    return kept


def checkpoint_path(name: str) -> Path:
    """The last.ckpt of run `name` (what `fit` returns)."""
    return Path("runs") / name / "version_0" / "checkpoints" / "last.ckpt"


def fit(name: str, configs: list[str], max_steps: int, *overrides: str) -> Path:
    """Train `runs/<name>/version_0` to max_steps (resuming a killed run); return last.ckpt."""
    import torch  # here, not at the top: a launcher's dataset and probe jobs start faster

    ckpt = checkpoint_path(name)
    args = ["fit", *[a for c in configs for a in ("-c", c)], f"--trainer.max_steps={max_steps}",
            f"--trainer.logger.init_args.name={name}", "--trainer.logger.init_args.version=0",
            "--trainer.logger.init_args.save_dir=runs", *overrides]  # fmt: skip
    if ckpt.exists():
        step = torch.load(ckpt, weights_only=True, map_location="cpu")["global_step"]
        if step >= max_steps:
            print(f"- {ckpt}: trained to step {step}, kept")
            return ckpt
        args.append("--ckpt_path=last")
    run(args)
    step = torch.load(ckpt, weights_only=True, map_location="cpu")["global_step"]
    if step != max_steps:
        raise SystemExit(f"{ckpt} holds step {step}, not the {max_steps} trained: not probing it")
    return ckpt


def probe(ckpt: Path, items: list[Path], out: Path, *options: str) -> Path:
    """`pwm probe` unless OUT already holds its metrics.json."""
    if (out / "metrics.json").exists():
        print(f"- {out}: probed, kept")
    else:
        run(["probe", "--ckpt", str(ckpt), *[a for i in items for a in ("--items", str(i))],
             "--out", str(out), *options])  # fmt: skip
    return out


def report_and_curate(
    probes: list[Path], runs_dir: Path, results: Path, figures=lambda run: False
) -> Path:
    """`pwm report` over `probes` into runs_dir/REPORT.md (remade every time: derived from the
    probes), then the curated copy under `results`: the REPORT files, and per probe run its
    metrics.md and its metrics.json gzipped (per-item scores make it ~0.8 MB; mtime 0 so the
    same metrics give the same bytes), with its figures where `figures(run)`. Returns the report."""
    out = runs_dir / "REPORT.md"
    for stale in runs_dir.glob("REPORT*"):
        stale.unlink()
    run(["report", *map(str, probes), "--out", str(out)])
    results.mkdir(parents=True, exist_ok=True)
    for f in runs_dir.glob("REPORT*"):
        shutil.copy2(f, results / f.name)
    curate(probes, results, figures)
    return out


def curate(probes: list[Path], results: Path, figures=lambda run: False) -> None:
    """Per probe run, its metrics.md and its metrics.json gzipped under results/runs (mtime 0:
    the same metrics give the same bytes), with its figures where `figures(run)`."""
    for p in probes:
        dst = results / "runs" / p.name
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p / "metrics.md", dst / "metrics.md")
        with (
            open(dst / "metrics.json.gz", "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f,
        ):
            f.write((p / "metrics.json").read_bytes())
        if figures(p):
            for png in p.glob("*.png"):
                shutil.copy2(png, dst / png.name)
