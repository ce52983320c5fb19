"""Throughput of the physics world: simulate + render, then the full `pwm generate physics`.

Target (issue 3): 1,000 episodes x 64 frames at 64 px in under 60 s on a 2-core machine.

    .venv/bin/python experiments/benchmarks/physics_throughput.py [--workers 2]

Prints the time of (a) the simulation alone, (b) rendering alone, both in-process on one core,
and (c) the whole CLI run (simulate, render, write shards with checksums, manifest) with
`--workers` processes, into a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from data_gen.cli import main as data_main
from data_gen.physics import EgoPolicy, PhysicsConfig, episode_arrays, initial_state, rollout


def bench(episodes: int, frames: int, size: int, workers: int) -> None:
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
    frames_total = episodes * frames
    print(f"{episodes} episodes x {frames} frames at {size} px ({frames_total} frames)")
    print(f"  simulate (1 core): {t_sim:6.1f} s")
    print(f"  render   (1 core): {t_render:6.1f} s  ({frames_total / t_render:,.0f} frames/s)")
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["generate", "physics", "--out", str(Path(tmp) / "d"), "--episodes", str(episodes)]
        argv += ["--frames", str(frames), "--image-size", str(size), "--workers", str(workers)]
        t0 = time.perf_counter()
        rc = data_main(argv)
        total = time.perf_counter() - t0
    assert rc == 0, "generation failed"
    verdict = "PASS" if total < 60 else "FAIL"
    print(f"  pwm generate physics --workers {workers}: {total:6.1f} s  (target < 60 s: {verdict})")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    bench(a.episodes, a.frames, a.image_size, a.workers)
