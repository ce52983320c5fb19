"""`make demo`: the 2x2 in miniature, on a 2-core CPU in under 15 minutes.

1. small physics and Polis (civilized) training sets and item sets (state and 32 px pixels: the
   pixel-difference baseline reads the frames);
2. the physical and the political world model, identical architecture and recipe
   (experiments/base.yaml + experiments/demo.yaml: the study's object-centric model on state
   observations, trained end to end with SIGReg and the prediction target detached), trained
   briefly;
3. `pwm probe` of each model on both item sets (linear probes fitted on one part of each item
   set's groups and scored on the rest), then `pwm report` -> the 2x2 table.

Re-runnable: finished datasets, runs and probes are kept (experiments/runner.py); delete
`data/demo`, `runs/demo-*` to start over. What it shows and what it does not: README, "Demo".
"""

from __future__ import annotations

import time
from pathlib import Path

from runner import dataset, fit, probe, run

DATA, OUT = Path("data/demo"), Path("runs/demo-probes")
SIZE = ["--image-size", "32"]
STEPS = 1000


def main() -> None:
    t0 = time.time()
    physics = dataset("generate", "physics", DATA / "physics", "--episodes", "256", "--frames",
                      "48", "--seed", "0", *SIZE)  # fmt: skip
    polis = dataset("generate", "polis", DATA / "polis", "--episodes", "256", "--frames", "64",
                    "--seed", "0", *SIZE)  # fmt: skip
    items = {
        "physics": dataset(
            "items", "physics", DATA / "physics_items", "--items", "200", "--seed", "1", *SIZE
        ),  # fmt: skip
        "polis": dataset(
            "items", "polis", DATA / "polis_items", "--items", "100", "--seed", "1", *SIZE
        ),  # fmt: skip
    }
    configs = ["experiments/base.yaml", "experiments/demo.yaml"]
    probes = []
    for name, world, data in (("physical", "physics", physics), ("political", "polis", polis)):
        ckpt = fit(f"demo-{name}", [configs[0], f"experiments/{name}.yaml", configs[1]], STEPS,
                   f"--data.path={data}")  # fmt: skip
        other = "physics" if world == "polis" else "polis"
        probes.append(probe(ckpt, [items[world], items[other]], OUT / name, "--name", name,
                            "--cross-world"))  # fmt: skip
    report = OUT / "REPORT.md"
    if report.exists():
        report.unlink()  # the report is derived from the probes above; remake it
    run(["report", *map(str, probes), "--out", str(report)])
    print(report.read_text())
    print(f"plots: {', '.join(sorted(str(p) for p in OUT.rglob('*.png')))}")
    print(f"demo finished in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
