"""Polis throughput against the Axelrod library, and the shared renderer (issue 4 item 5, issue 8).

    python experiments/benchmarks/polis_throughput.py [--quick] [--train-fps F] [--json PATH]

How rounds are counted, on both sides: one *pairwise exchange* = two agents each choosing C or D
once against each other (an Axelrod "turn" of a Match). Axelrod: every turn of every match is one.
Polis: every pair actually formed in an exchange round is one (agents left unpaired, because no
one is within exchange_radius, play nothing and count nothing; so N agents in B episodes give at
most B * N / 2 per round, about half that in practice). Four measurements, one after the other:

1. Axelrod (`pip install axelrod`, the `bench` extra): a round robin of `--turns`-turn matches
   between the strategies closest to Polis's dispositions (TitForTat ~ reciprocator, GTFT ~
   generous, Grudger ~ grim, Cooperator, Defector), noise 0.02 as Polis's tremble.
2. Polis dynamics (`polis.run`, default civilized config, `--batch` episodes of `--frames`
   frames): movement every frame (pairwise social forces, overlap projection), pairing,
   decisions, trust and reputation. Axelrod has no movement: this is the whole world per
   exchange.
3. Polis's exchange engine alone (`polis.pair` + `polis_exchange.exchange` over every round of
   the same episodes, positions replayed from the run): the part that does what Axelrod does
   (choose, tremble, update trust, memory and reputation), like for like.
4. The renderer (`polis.pixels` on those episodes) at 32, 64 and 96 px, and Polis generation
   with rendering (`polis.simulate`) at `--image-size`: frames/s, compared with the frames/s the
   training step consumes (`--train-fps`, measured by train_step.py; run_all.py passes it).

Targets: Polis dynamics >= 100x Axelrod's rounds/s; rendering >= 10x the training consumption.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import add_rate_arguments, finish, load, median_time, table

from data_gen import polis
from data_gen.polis_config import PolisConfig
from data_gen.polis_exchange import Social, exchange


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


def exchanges(truth: dict) -> int:
    """Pairwise exchanges in a run: every formed pair once."""
    return int((truth["partner"] >= 0).sum()) // 2


def exchange_engine(config: PolisConfig, sc: polis.Scenario, truth: dict) -> float:
    """Seconds to pair and play every round of the episodes, positions replayed from `truth`."""
    b, n = sc.dispositions.shape
    script = polis.Script.natural(config, b)
    frames = [
        (t, t // config.round_len - 1)
        for t in range(config.round_len, config.frames, config.round_len)
    ]
    pos = {t: np.ascontiguousarray(truth["positions"][:, t]) for t, _ in frames}  # (B, N, 2)
    dist = {t: np.linalg.norm(p[:, None] - p[:, :, None], axis=-1) for t, p in pos.items()}

    def play():
        soc = Social.start(config, b, n)
        for t, r in frames:
            partner = polis.pair(dist[t], config.exchange_radius)
            exchange(config, soc, sc, r, pos[t], partner, script.force[r], script.erase[r])

    return median_time(play, 3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small batches, short Axelrod run")
    p.add_argument("--batch", type=int, default=1024, help="Polis episodes per timed batch")
    p.add_argument("--render-batch", type=int, default=16, help="episodes rendered")
    p.add_argument("--frames", type=int, default=241, help="frames per Polis episode")
    p.add_argument("--agents", type=int, default=6)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--turns", type=int, default=200, help="turns per Axelrod match")
    p.add_argument("--repeats", type=int, default=4, help="Axelrod round robins")
    add_rate_arguments(p)
    args = p.parse_args()
    start = load()
    batch = 128 if args.quick else args.batch
    render_batch = 4 if args.quick else args.render_batch
    repeats = 1 if args.quick else args.repeats

    ax = axelrod_rounds_per_s(args.turns, repeats)
    cfg = PolisConfig(n_agents=args.agents, frames=args.frames, image_size=0)
    polis.run(cfg, polis.draw_scenario(cfg, np.random.default_rng(0), 8))  # warm-up
    sc = polis.draw_scenario(cfg, np.random.default_rng(1), batch)
    t0 = time.perf_counter()
    truth = polis.run(cfg, sc)
    dyn_s = time.perf_counter() - t0
    pairs = exchanges(truth)
    dyn = pairs / dyn_s
    engine = pairs / exchange_engine(cfg, sc, truth)
    offered = batch * args.agents // 2 * polis.rounds(cfg)

    sub = {k: v[:render_batch] for k, v in truth.items()}
    frames = render_batch * args.frames
    render_fps = {}
    for size in (32, 64, 96):
        ren_cfg = PolisConfig(n_agents=args.agents, frames=args.frames, image_size=size)
        render_fps[size] = frames / median_time(lambda c=ren_cfg: polis.pixels(c, sub), 3)
    gen_cfg = PolisConfig(n_agents=args.agents, frames=args.frames, image_size=args.image_size)
    gen_s = median_time(lambda: polis.simulate(gen_cfg, np.random.default_rng(2), render_batch), 2)
    gen_fps = frames / gen_s

    rows = [
        ["Axelrod round robin (5 strategies, noise 0.02)", f"{ax:,.0f}", "1.00x", ""],
        [
            f"Polis dynamics ({batch} episodes x {args.frames} frames, {args.agents} agents)",
            f"{dyn:,.0f}",
            f"{dyn / ax:.2f}x",
            f"{batch * args.frames / dyn_s:,.0f} episode-frames/s",
        ],
        [
            "Polis exchange engine alone (pair + decide + trust/reputation)",
            f"{engine:,.0f}",
            f"{engine / ax:.2f}x",
            f"{polis.rounds(cfg)} rounds per episode",
        ],
    ]
    md = [table(["what", "pairwise exchanges/s", "vs Axelrod", "note"], rows)]
    md.append(
        f"\nPairs formed: {pairs:,} of at most {offered:,} (B * N/2 per round; "
        f"{pairs / offered:.0%}).\n\nTarget (dynamics >= 100x Axelrod): {dyn / ax:.2f}x -> "
        f"{'MET' if dyn >= 100 * ax else 'MISSED'}."
    )
    ren_rows = [[f"render {s} px", f"{f:,.0f}"] for s, f in render_fps.items()]
    ren_rows.append([f"simulate + render {args.image_size} px", f"{gen_fps:,.0f}"])
    if args.train_fps:
        for r in ren_rows:
            r.append(f"{float(r[1].replace(',', '')) / args.train_fps:.1f}x")
    md.append(f"\nRendering ({render_batch} episodes x {args.frames} frames, one process):\n")
    md.append(table(["what", "frames/s", "vs training step"][: len(ren_rows[0])], ren_rows))
    if args.train_fps:
        ratio = render_fps[args.image_size] / args.train_fps if args.image_size in render_fps else 0
        md.append(
            f"\nTraining consumes {args.train_fps:.0f} frames/s (train_step.py, base "
            f"preset).\n\nTarget (rendering at {args.image_size} px >= 10x that): {ratio:.1f}x -> "
            f"{'MET' if ratio >= 10 else 'MISSED'}."
        )
    data = {
        "axelrod": ax,
        "dynamics": dyn,
        "engine": engine,
        "pairs": pairs,
        "offered": offered,
        "dynamics_frames_per_s": batch * args.frames / dyn_s,
        "render_fps": render_fps,
        "simulate_render_fps": gen_fps,
        "train_fps": args.train_fps,
    }
    finish("Polis against Axelrod, and the renderer", "\n".join(md), data, args.json, start)


if __name__ == "__main__":
    main()
