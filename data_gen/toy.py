"""A tiny built-in world for smoke tests and the debug preset: two discs and a pushed ego.

Disc 0 (the ego) follows a smooth random force (the recorded action); disc 1 drifts at constant
velocity. Both reflect off the walls; they do not interact. It exists so the training core can be
exercised in seconds without either real world; it is rendered by the shared renderer and written
in the shared format, so it loads exactly like a physics or Polis dataset.
"""

from __future__ import annotations

import argparse
import functools

import numpy as np

from data_gen.render import PALETTE, render
from data_gen.writer import generate_dataset

RADIUS = 0.08
COMMANDS = ("generate",)


def simulate(
    rng: np.random.Generator, n: int, frames: int, image_size: int
) -> dict[str, np.ndarray]:
    """`n` episodes: pixels, state (per disc x, y, vx, vy, cue_c, cue_d), actions."""
    pos = rng.uniform(RADIUS, 1 - RADIUS, size=(n, 2, 2))  # (n, 2 discs, xy)
    vel = rng.normal(0, 0.02, size=(n, 2, 2))  # (n, 2, 2)
    force = np.zeros((n, 2))  # (n, 2)
    positions = np.empty((n, frames, 2, 2))
    velocities = np.empty((n, frames, 2, 2))
    actions = np.empty((n, frames, 2), dtype=np.float32)
    for t in range(frames):
        positions[:, t], velocities[:, t] = pos, vel
        force = 0.8 * force + 0.2 * rng.normal(0, 1, size=(n, 2))  # smooth random push
        actions[:, t] = force
        vel[:, 0] = np.clip(vel[:, 0] + 0.005 * force, -0.05, 0.05)
        pos = pos + vel
        low, high = pos < RADIUS, pos > 1 - RADIUS
        vel = np.where(low | high, -vel, vel)
        pos = np.clip(pos, RADIUS, 1 - RADIUS)
    colors = np.broadcast_to(PALETTE[:2], (n, frames, 2, 3))
    pixels = render(positions, RADIUS, image_size, colors)  # (n, T, H, W, 3)
    cues = np.zeros((n, frames, 2, 2))
    state = np.concatenate([positions, velocities * 10, cues], axis=-1)  # (n, T, 2, 6)
    return {
        "pixels": pixels,
        "state": state.reshape(n, frames, -1).astype(np.float32),
        "actions": actions,
        "positions": positions.astype(np.float32),
    }


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The toy world has no options of its own."""


def run(args: argparse.Namespace, command: str) -> None:
    sim = functools.partial(simulate, frames=args.frames, image_size=args.image_size)
    meta = {
        "world": "toy",
        "kind": "dataset",
        "config": {"frames": args.frames, "image_size": args.image_size},
    }
    generate_dataset(
        args.out,
        sim,
        meta,
        args.episodes,
        args.seed,
        episodes_per_shard=32,
        workers=args.workers,
        shard=args.shard,
        num_shards=args.num_shards,
    )
