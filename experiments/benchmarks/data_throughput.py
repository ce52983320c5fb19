"""Data: Polis dataset generation and the training data loader against the training step (8.3).

    python experiments/benchmarks/data_throughput.py [--quick] [--train-fps F] [--json PATH]

1. `pwm generate polis` end to end (simulate, render at 64 px, write shards with checksums and
   the manifest) with 1 and 2 worker processes: episode-frames per second. (The physics world's
   end-to-end figure is physics_throughput.py's; Polis's dynamics and renderer alone are
   polis_throughput.py's.)
2. The training loader on that dataset: `pwm.data.WorldDataModule(...).train_dataloader()` with
   the base preset's window and batch size, num_workers 0 and 2; windows/s and frames/s (a window
   of L frames delivers L frames, the unit the training step consumes), after one warm-up batch
   (worker start-up excluded). The loader must never be the bottleneck: its frames/s are compared
   with the training step's (`--train-fps`, which run_all.py takes from train_step.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import yaml
from common import add_rate_arguments, finish, load, table

from data_gen.cli import main as data_main
from pwm.data import WorldDataModule

ROOT = Path(__file__).resolve().parents[2]


def generate(out: Path, episodes: int, frames: int, workers: int) -> float:
    """Seconds for `pwm generate polis` of episodes x frames at 64 px."""
    argv = ["generate", "polis", "--out", str(out), "--episodes", str(episodes)]
    argv += ["--frames", str(frames), "--image-size", "64", "--workers", str(workers)]
    argv += ["--episodes-per-shard", "32"]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = data_main(argv)
    if rc != 0:
        raise RuntimeError(f"pwm {' '.join(argv)} failed with exit code {rc}")
    return time.perf_counter() - start


def loader_rate(path: Path, window: int, batch: int, workers: int, batches: int) -> dict:
    dm = WorldDataModule(str(path), "pixels", window=window, batch_size=batch, num_workers=workers)
    loader = iter(dm.train_dataloader())
    next(loader)  # warm-up: worker start-up and first memory maps
    start = time.perf_counter()
    for _ in range(batches):
        next(loader)
    seconds = time.perf_counter() - start
    windows = batches * batch / seconds
    return {"workers": workers, "windows_per_s": windows, "frames_per_s": windows * window}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small dataset, few batches")
    p.add_argument("--episodes", type=int, default=256)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--batches", type=int, default=40, help="timed batches per loader setting")
    add_rate_arguments(p)
    args = p.parse_args()
    start = load()
    episodes = 32 if args.quick else args.episodes
    batches = 5 if args.quick else args.batches
    data = yaml.safe_load((ROOT / "experiments/base.yaml").read_text())["data"]
    window, batch = data["window"], data["batch_size"]
    gen_rows, load_rows, result = [], [], {"generate": [], "loader": []}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            out = Path(tmp) / f"polis{workers}"
            seconds = generate(out, episodes, args.frames, workers)
            fps = episodes * args.frames / seconds
            result["generate"].append({"workers": workers, "seconds": seconds, "frames_per_s": fps})
            gen_rows.append(
                [workers, f"{episodes} x {args.frames}", f"{seconds:.1f}", f"{fps:,.0f}"]
            )
        for workers in (0, 2):
            r = loader_rate(Path(tmp) / "polis1", window, batch, workers, batches)
            result["loader"].append(r)
            ratio = f"{r['frames_per_s'] / args.train_fps:.1f}x" if args.train_fps else "n/a"
            load_rows.append(
                [workers, f"{r['windows_per_s']:,.0f}", f"{r['frames_per_s']:,.0f}", ratio]
            )
    md = [
        "`pwm generate polis` at 64 px (simulate, render, write, checksum):\n",
        table(["workers", "episodes x frames", "seconds", "frames/s"], gen_rows),
        f"\nTraining loader (WorldDataModule train loader, window {window}, batch {batch}, "
        f"{batches} batches after a warm-up):\n",
        table(["num_workers", "windows/s", "frames/s", "vs training step"], load_rows),
    ]
    if args.train_fps:
        slowest = min(r["frames_per_s"] for r in result["loader"])
        gen = max(r["frames_per_s"] for r in result["generate"])
        md.append(
            f"\nTraining consumes {args.train_fps:.0f} frames/s (train_step.py, base preset).\n\n"
            f"Target (the loader is never the bottleneck): slowest setting "
            f"{slowest / args.train_fps:.1f}x that -> "
            f"{'never the bottleneck' if slowest > args.train_fps else 'A BOTTLENECK'}; "
            f"generation: {gen / args.train_fps:.1f}x."
        )
    result["train_fps"] = args.train_fps
    finish("Data: generation and loader throughput", "\n".join(md), result, args.json, start)


if __name__ == "__main__":
    main()
