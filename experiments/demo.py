"""`make demo`: the 2x2 in miniature, on a 2-core CPU in under 15 minutes.

    python experiments/demo.py [--quick]

1. small physics and Polis (civilized) training sets and item sets (state and 32 px pixels: the
   pixel-difference baseline reads the frames);
2. the physical and the political world model, identical architecture and recipe
   (experiments/base.yaml + experiments/demo.yaml: the study's object-centric model on state
   observations, trained end to end with SIGReg and the prediction target detached), trained
   briefly;
3. `pwm probe` of each model on both item sets (linear probes fitted on one part of each item
   set's groups and scored on the rest), then `pwm report`; the end of the output is a short
   summary (the headline 2x2 and the named tests, pwm/probes/summary.py) with the path of the
   full report and its figures.

`--quick` runs the same steps at a tenth of the size (64 episodes, 100 steps: a few minutes)
into data/demo-quick and runs/demo-quick-*: a check that the pipeline runs, not a result.
Re-runnable: finished datasets, runs and probes are kept (experiments/runner.py); delete
`data/demo`, `runs/demo-*` to start over. What it shows and what it does not: README, "Demo".
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from runner import dataset, fit, probe, run

from pwm.probes import summary

SIZE = ["--image-size", "32"]
STEPS = 1000
# scale -> (name, episodes per training set, physics item pairs, Polis item groups, steps, extra
# fit options); the quick run validates every 50 steps (demo.yaml's 500 is for 1,000 steps)
SCALES = {
    "full": ("demo", 256, 200, 100, STEPS, []),
    "quick": ("demo-quick", 64, 40, 20, 100, ["--trainer.val_check_interval=50"]),
}


def main(scale: str = "full") -> None:
    t0 = time.time()
    tag, episodes, pairs, groups, steps, extra = SCALES[scale]
    data, out = Path("data") / tag, Path("runs") / f"{tag}-probes"
    n = str(episodes)
    physics = dataset("generate", "physics", data / "physics", "--episodes", n, "--frames",
                      "48", "--seed", "0", *SIZE)  # fmt: skip
    polis = dataset("generate", "polis", data / "polis", "--episodes", n, "--frames", "64",
                    "--seed", "0", *SIZE)  # fmt: skip
    items = {
        "physics": dataset(
            "items", "physics", data / "physics_items", "--items", str(pairs), "--seed", "1", *SIZE
        ),  # fmt: skip
        "polis": dataset(
            "items", "polis", data / "polis_items", "--items", str(groups), "--seed", "1", *SIZE
        ),  # fmt: skip
    }
    configs = ["experiments/base.yaml", "experiments/demo.yaml"]
    probes = []
    for name, world, path in (("physical", "physics", physics), ("political", "polis", polis)):
        ckpt = fit(f"{tag}-{name}", [configs[0], f"experiments/{name}.yaml", configs[1]], steps,
                   f"--data.path={path}", *extra)  # fmt: skip
        other = "physics" if world == "polis" else "polis"
        probes.append(probe(ckpt, [items[world], items[other]], out / name, "--name", name,
                            "--cross-world"))  # fmt: skip
    report = out / "REPORT.md"
    for stale in out.glob("REPORT*"):
        stale.unlink()  # the report is derived from the probes above; remake it
    run(["report", *map(str, probes), "--out", str(report)])
    groups = summary.parse_keys(json.loads(report.with_suffix(".json").read_text()))
    print("\n" + "\n".join(summary.brief(groups)))
    figures = sorted(p.name for p in out.glob("REPORT*.png"))
    print(f"Full report: {report} (figures beside it: {', '.join(figures)}); per model: "
          f"{out}/<model>/metrics.md and curves_*.png, one panel per comparison")  # fmt: skip
    print(f"demo finished in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tenth of the size: does it run?")
    main("quick" if p.parse_args().quick else "full")
