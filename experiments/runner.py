"""Re-runnable experiment steps shared by `make demo` and `make reproduce`.

Every step checks for its finished output first and skips when it is there, so a pipeline can be
re-run after an interruption and never silently overwrites a finished result:

- a dataset / item set is finished when its manifest exists; an unfinished one (killed run) is
  resumed by re-running the same command (the generator keeps finished shards);
- a training run `runs/<name>/version_0` is finished when its `last.ckpt` has reached max_steps;
  an unfinished one is resumed with `--ckpt_path last` (bit-identical to an uninterrupted run);
- a probe is finished when its `metrics.json` exists.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch

PWM = [sys.executable, "-m", "pwm.cli"]


def run(args: list[str]) -> None:
    """Run one `pwm` command, echoing it; stop the pipeline if it fails."""
    print("$ pwm " + " ".join(args), flush=True)
    t0 = time.time()
    code = subprocess.run([*PWM, *args]).returncode
    if code:
        raise SystemExit(f"step failed (exit {code}): pwm {' '.join(args)}")
    print(f"  ({time.time() - t0:.0f} s)", flush=True)


def dataset(command: str, world: str, out: Path, *options: str) -> Path:
    """`pwm generate|items WORLD --out OUT ...` unless OUT is already a finished dataset."""
    if (out / "manifest.json").exists():
        print(f"- {out}: exists, kept")
    else:
        run([command, world, "--out", str(out), *options])
    return out


def fit(name: str, configs: list[str], max_steps: int, *overrides: str) -> Path:
    """Train `runs/<name>/version_0` to max_steps (resuming a killed run); return last.ckpt."""
    ckpt = Path("runs") / name / "version_0" / "checkpoints" / "last.ckpt"
    args = ["fit", *[a for c in configs for a in ("-c", c)], f"--trainer.max_steps={max_steps}",
            f"--trainer.logger.init_args.name={name}", "--trainer.logger.init_args.version=0",
            "--trainer.logger.init_args.save_dir=runs", "--trainer.enable_progress_bar=false",
            *overrides]  # fmt: skip
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
