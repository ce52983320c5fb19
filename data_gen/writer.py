"""Sharded, deterministic, resumable dataset generation over any world (DESIGN 3.4, 7).

A world provides `simulate(rng, num_episodes) -> dict[str, np.ndarray]` (leading axis episodes).
Shard `i` is always simulated from `np.random.default_rng([seed, i])`, so the bytes of a shard
depend only on (config, seed, i): the same whatever the number of worker processes, whichever
job of a `--shard i --num-shards n` split produced it, and whether it was made in one run or
resumed after a kill. Finished shards are skipped on re-run; the manifest is written last.
Worker processes end with the process that started them, however it dies (pwm/workers.py).

Each invocation appends its provenance (commit, command, versions, machine: pwm/provenance.py)
to `provenance.json` beside the manifest, never inside it: the manifest and the shards stay a
function of (config, seed) alone, byte for byte, while the record of who made them grows with
each job of a split or resumed generation.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from pwm import progress, provenance
from pwm.data.format import (
    MANIFEST,
    DatasetError,
    finalize,
    read_shard_record,
    remove_stale_temporaries,
    write_shard,
)
from pwm.workers import die_with_parent

Simulate = Callable[[np.random.Generator, int], dict[str, np.ndarray]]


def shard_sizes(num_episodes: int, episodes_per_shard: int) -> list[int]:
    full, rest = divmod(num_episodes, episodes_per_shard)
    return [episodes_per_shard] * full + ([rest] if rest else [])


def _make_shard(simulate: Simulate, out: Path, seed: int, index: int, episodes: int) -> int:
    rng = np.random.default_rng([seed, index])
    write_shard(out, index, simulate(rng, episodes))
    return index


def generate_dataset(
    out: Path,
    simulate: Simulate,
    meta: dict,
    num_episodes: int,
    seed: int,
    episodes_per_shard: int = 64,
    workers: int = 1,
    shard: int = 0,
    num_shards: int = 1,
    extra_files: Callable[[Path], list[str]] | None = None,
) -> bool:
    """Simulate and write the shards owned by job `shard` of `num_shards`; finalise if complete.

    `out` must already exist (see `prepare_output_dir`). `extra_files(out)` may write top-level
    files (item metadata) before the manifest and returns their names. Returns whether the
    manifest was written (the dataset is complete).
    """
    if num_episodes < 1:
        raise DatasetError(f"--episodes must be >= 1, got {num_episodes}")
    if not 0 <= shard < num_shards:
        raise DatasetError(f"--shard must be in [0, --num-shards), got {shard} of {num_shards}")
    if workers < 1:
        raise DatasetError(f"--workers must be >= 1, got {workers}")
    provenance.write(out, provenance.collect())
    sizes = shard_sizes(num_episodes, episodes_per_shard)
    todo = [i for i in range(shard, len(sizes), num_shards) if read_shard_record(out, i) is None]
    with progress.bar() as bar:
        task = bar.add_task(
            f"{meta['world']} {meta.get('kind', 'dataset')}: shards", total=len(todo)
        )
        if min(workers, len(todo)) <= 1:  # no pool for a single shard
            for i in todo:
                _make_shard(simulate, out, seed, i, sizes[i])
                bar.advance(task)
        else:
            ends_with_us = dict(initializer=die_with_parent, initargs=(os.getpid(),))
            with ProcessPoolExecutor(min(workers, len(todo)), **ends_with_us) as pool:
                futures = [pool.submit(_make_shard, simulate, out, seed, i, sizes[i]) for i in todo]
                for f in futures:
                    f.result()
                    bar.advance(task)
    if (out / MANIFEST).exists():
        return True
    if any(read_shard_record(out, i) is None for i in range(len(sizes))):
        return False
    remove_stale_temporaries(out)  # a killed run's half-written shard directories
    names = list(extra_files(out)) if extra_files else []
    meta = {**meta, "seed": seed, "episodes_per_shard": episodes_per_shard}
    return finalize(out, len(sizes), meta, extra_files=names)
