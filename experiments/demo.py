"""`make demo`: the 2x2 in miniature, on a 2-core CPU in under 15 minutes.

    python experiments/demo.py [--quick]

1. physics and Polis training sets (512 physics and 2,048 Polis episodes; Polis: civilized, law
   `reciprocity`, the lag-1 rung of the law ladder; 241-frame episodes, state and 16 px
   frames: the pixel-difference baseline reads them; the state with the exchange links,
   `--state-links`, in both worlds: all zero in physics) and item sets (Polis: B is the ego, K in
   1, 2, 4, 8 rounds; physics: t* after frame 50, so that 8 rounds of context fit before it);
2. the physical and the political world model, identical architecture and recipe
   (experiments/base.yaml + experiments/law.yaml + experiments/demo.yaml: the social-law study's
   model, one step per exchange round, one token per agent, 8 rounds of history, trained end to
   end with SIGReg and the prediction target detached on state observations), trained briefly;
3. `pwm probe` of each model on both item sets (linear probes fitted on one part of each item
   set's groups and scored on the rest), then `pwm report`; the end of the output is a short
   summary (the headline 2x2 and the named tests, pwm/probes/summary.py) with the path of the
   full report and its figures.

`--quick` runs the same steps at a tenth of the size (64 episodes, 100 steps: a few minutes)
into data/demo-quick and runs/demo-quick-*: a check that the pipeline runs, not a result.
Re-runnable: finished datasets, runs and probes are kept (experiments/runner.py); delete
`data/demo`, `runs/demo-*` to start over (a kept dataset made by other options, e.g. by an
older demo without the link columns, stops the demo with one line saying so). What it shows
and what it does not: README, "Demo".
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

from runner import dataset, fit, probe, run

from pwm.probes import summary

STEPS = 1500
LAW = ["--law", "reciprocity"]
# both worlds' states carry the exchange link columns (Polis: a one-hot of the agent each link is
# drawn to; physics: the same columns, all zero): the link is the lever that took the social-law
# study's R from 0.84 to 0.90 (experiments/results/law/README.md, "Why R stopped at 0.84"), and the
# same layout in both worlds keeps the 2x2's cross-world probes possible.
OBS = ["--image-size", "16", "--state-links"]  # every set: 16 px frames, the state with links
# physics items with t* in [50, 66] of 72 frames: 8 steps of 6 frames of context before t*
PHYSICS_ITEMS = ["--frames", "72", "--t-star-min", "50", "--t-star-max", "66"]
# scale -> (name, physics training episodes, Polis training episodes, physics item pairs, Polis
# item groups, steps, extra fit options); the quick run validates every 50 steps (demo.yaml's 500
# divides 1,500). Polis gets the social-law study's 2,048 episodes: on 512 the model overfits
# after about 1,500 steps (its best validation loss at step 1,500 of 2,500, where R fell from
# 0.74 to 0.68; experiments/results/law/README.md, "The demo"); physics needs no more than 512
# for its teleport and costs time to generate.
SCALES = {
    "full": ("demo", 512, 2048, 200, 100, STEPS, []),
    "quick": ("demo-quick", 64, 64, 40, 20, 100, ["--trainer.val_check_interval=50"]),
}


def main(scale: str = "full") -> None:
    t0 = time.time()
    tag, n_physics, n_polis, pairs, groups, steps, extra = SCALES[scale]
    data, out = Path("data") / tag, Path("runs") / f"{tag}-probes"
    # every set with the link columns; a kept set made by other options stops the demo (strict)
    made = functools.partial(dataset, strict=True)
    physics = made("generate", "physics", data / "physics", "--episodes", str(n_physics),
                   "--frames", "241", "--seed", "0", *OBS)  # fmt: skip
    polis = made("generate", "polis", data / "polis", "--episodes", str(n_polis), "--frames",
                 "241", "--seed", "0", *LAW, *OBS)  # fmt: skip
    physics_items = made("items", "physics", data / "physics_items", "--items", str(pairs),
                         "--seed", "1", *PHYSICS_ITEMS, *OBS)  # fmt: skip
    polis_items = made("items", "polis", data / "polis_items", "--items", str(groups), "--seed",
                       "1", *LAW, *OBS)  # fmt: skip
    items = {"physics": physics_items, "polis": polis_items}
    probes = []
    for name, world, path in (("physical", "physics", physics), ("political", "polis", polis)):
        configs = ["experiments/base.yaml", f"experiments/{name}.yaml", "experiments/law.yaml",
                   "experiments/demo.yaml"]  # fmt: skip
        ckpt = fit(f"{tag}-{name}", configs, steps, f"--data.path={path}", *extra)
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
