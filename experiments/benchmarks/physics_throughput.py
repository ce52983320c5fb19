"""Throughput of the physics world: simulate + render, then the full `pwm generate physics`.

Target (issue 3): 1,000 episodes x 64 frames at 64 px in under 60 s on a 2-core machine.

    python experiments/benchmarks/physics_throughput.py [--workers 2] [--quick] [--json PATH]

Prints the time of (a) the simulation alone, (b) rendering alone, both in-process on one core,
and (c) the whole CLI run (simulate, render, write shards with checksums, manifest) with
`--workers` processes, into a temporary directory that is removed afterwards. `--quick` runs
100 episodes (the 60 s target is then scaled to 6 s).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from common import finish, load, table

from data_gen.cli import main as data_main
from data_gen.physics import EgoPolicy, PhysicsConfig, episode_arrays, initial_state, rollout


def bench(episodes: int, frames: int, size: int, workers: int) -> dict:
    cfg = PhysicsConfig(frames=frames, image_size=size)
    rng = np.random.default_rng(0)
    batch = 64
    t_sim = t_render = 0.0
    for start in range(0, episodes, batch):
        n = min(batch, episodes - start)
        t0 = time.perf_counter()
        pos, vel = initial_state(cfg, rng, n)
        traj = rollout(pos, vel, cfg.radius, frames, EgoPolicy(cfg, rng, n))
        t1 = time.perf_counter()
        episode_arrays(cfg, traj)
        t_sim, t_render = t_sim + t1 - t0, t_render + time.perf_counter() - t1
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["generate", "physics", "--out", str(Path(tmp) / "d"), "--episodes", str(episodes)]
        argv += ["--frames", str(frames), "--image-size", str(size), "--workers", str(workers)]
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            rc = data_main(argv)
        total = time.perf_counter() - t0
    assert rc == 0, "generation failed"
    return {
        "episodes": episodes,
        "frames": frames,
        "size": size,
        "workers": workers,
        "simulate_s": t_sim,
        "render_s": t_render,
        "cli_s": total,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="100 episodes")
    p.add_argument("--json", help="write the result here (for run_all.py)")
    a = p.parse_args()
    start = load()
    episodes = 100 if a.quick else a.episodes
    r = bench(episodes, a.frames, a.image_size, a.workers)
    n = episodes * a.frames
    limit = 60 * episodes / 1000
    rows = [
        ["simulate (1 core)", f"{r['simulate_s']:.1f}", f"{n / r['simulate_s']:,.0f}"],
        [f"render {a.image_size} px (1 core)", f"{r['render_s']:.1f}", f"{n / r['render_s']:,.0f}"],
        [
            f"pwm generate physics --workers {a.workers}",
            f"{r['cli_s']:.1f}",
            f"{n / r['cli_s']:,.0f}",
        ],
    ]
    md = [
        f"{episodes} episodes x {a.frames} frames at {a.image_size} px ({n:,} frames):\n",
        table(["what", "seconds", "frames/s"], rows),
        f"\nTarget (issue 3: 1,000 episodes in < 60 s, here {limit:.0f} s for {episodes}): "
        f"{r['cli_s']:.1f} s -> {'MET' if r['cli_s'] < limit else 'MISSED'}.",
    ]
    finish("Physics world: simulation, rendering, generation", "\n".join(md), r, a.json, start)


if __name__ == "__main__":
    main()
