"""Polis throughput against the Axelrod library, measured in one run (issue 4, item 5).

    python experiments/benchmarks/polis_throughput.py [--batch 1024] [--frames 241]

Counts *pairwise exchange rounds per second*: one round = two agents each choosing C or D once
(an Axelrod "turn"). Three measurements on the same machine, one after the other:

1. Axelrod (`pip install axelrod`, the `bench` extra; imported here only): a round robin of
   matches between the strategies closest to Polis's dispositions (TitForTat ~ reciprocator,
   GTFT ~ generous reciprocator, Grudger ~ grim, Cooperator, Defector) with the same tremble
   (noise 0.02), `--turns` turns per match.
2. Polis dynamics alone (`polis.run`, default civilized config, `--batch` episodes of
   `--frames` frames): movement, pairing, decisions, trust and reputation; every exchange round
   of every pair counted.
3. Polis with rendering (`polis.simulate` at `--image-size`), also reported as frames/s against
   the rate at which training consumes frames (`--train-fps`, default 300 frames/s for a 64 px
   training step: an assumption, not measured here).

Prints the rates and the ratios; the targets are Polis dynamics >= 100x Axelrod and rendering
>= 10x the training consumption.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from data_gen import polis
from data_gen.polis_config import PolisConfig


def axelrod_rounds_per_s(turns: int, repeats: int) -> float:
    import axelrod as axl

    players = [axl.TitForTat, axl.GTFT, axl.Grudger, axl.Cooperator, axl.Defector]
    start, rounds = time.perf_counter(), 0
    for rep in range(repeats):
        for i, a in enumerate(players):
            for b in players[i:]:
                axl.Match((a(), b()), turns=turns, noise=0.02, seed=rep).play()
                rounds += turns
    return rounds / (time.perf_counter() - start)


def polis_rounds_per_s(config: PolisConfig, batch: int, render: bool) -> tuple[float, float]:
    """(exchange rounds per second, frames per second) of one timed batch, after a warm-up."""
    polis.simulate(config, np.random.default_rng(0), 8)  # warm-up
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    if render:
        out = polis.simulate(config, rng, batch)
    else:
        out = polis.run(config, polis.draw_scenario(config, rng, batch))
    seconds = time.perf_counter() - start
    exchanges = (out["partner"] >= 0).sum() / 2
    return exchanges / seconds, batch * config.frames / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=1024, help="Polis episodes per timed batch")
    p.add_argument("--render-batch", type=int, default=64, help="episodes for the rendered run")
    p.add_argument("--frames", type=int, default=241, help="frames per Polis episode")
    p.add_argument("--agents", type=int, default=6)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--turns", type=int, default=200, help="turns per Axelrod match")
    p.add_argument("--repeats", type=int, default=4, help="Axelrod round robins")
    p.add_argument("--train-fps", type=float, default=300.0, help="assumed training frames/s")
    args = p.parse_args()

    ax = axelrod_rounds_per_s(args.turns, args.repeats)
    dyn_cfg = PolisConfig(n_agents=args.agents, frames=args.frames, image_size=0)
    dyn, dyn_fps = polis_rounds_per_s(dyn_cfg, args.batch, render=False)
    ren_cfg = PolisConfig(n_agents=args.agents, frames=args.frames, image_size=args.image_size)
    ren, ren_fps = polis_rounds_per_s(ren_cfg, args.render_batch, render=True)

    print(f"axelrod             {ax:12,.0f} rounds/s")
    print(f"polis dynamics      {dyn:12,.0f} rounds/s  {dyn_fps:10,.0f} frames/s")
    print(f"polis + render {args.image_size:3d}px {ren:10,.0f} rounds/s  {ren_fps:10,.0f} frames/s")
    print(f"ratio dynamics / axelrod: {dyn / ax:8.2f}x (target >= 100x)")
    print(f"ratio rendered / axelrod: {ren / ax:8.2f}x")
    print(f"rendered frames / training consumption ({args.train_fps:.0f} frames/s, assumed): "
          f"{ren_fps / args.train_fps:.1f}x (target >= 10x)")  # fmt: skip


if __name__ == "__main__":
    main()
