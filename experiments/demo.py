"""`make demo`: the main job on built-in defaults.

Until the worlds and probes are complete this is the training core's smoke run: generate the toy
dataset, train the debug preset briefly, print the losses and the embedding health. Re-runnable:
an existing dataset is reused.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

PWM = [sys.executable, "-m", "pwm.cli"]


def run(*args: str) -> None:
    print("$ pwm", " ".join(args), flush=True)
    subprocess.run([*PWM, *args], check=True)


def main() -> None:
    data = Path("data/toy")
    if not (data / "manifest.json").exists():
        run(
            "generate",
            "toy",
            "--out",
            str(data),
            "--episodes",
            "48",
            "--frames",
            "24",
            "--image-size",
            "32",
            "--overwrite",
        )
    run(
        "fit",
        "-c",
        "experiments/base.yaml",
        "-c",
        "experiments/debug.yaml",
        "--trainer.logger.init_args.name",
        "demo",
    )
    versions = sorted(Path("runs/demo").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    rows = list(csv.DictReader(open(versions[-1] / "metrics.csv")))
    keys = ["train/pred_loss", "train/reg_loss", "train/z_std", "train/z_rank"]
    train = [r for r in rows if r.get("train/loss")]
    print("\nstep  " + "  ".join(f"{k:>16}" for k in keys))
    for r in train:
        print(f"{r['step']:>4}  " + "  ".join(f"{float(r[k]):16.4f}" for k in keys))
    val = [r for r in rows if r.get("val/loss")]
    if val:
        v = val[-1]
        print(
            f"\nval: loss {float(v['val/loss']):.4f}  z_std {float(v['val/z_std']):.3f}  "
            f"z_rank {float(v['val/z_rank']):.1f}"
        )
    print(f"run directory: {versions[-1]}")


if __name__ == "__main__":
    main()
