"""Helpers shared by the reliability tests: fault injection (a dataset with one non-finite value,
placed where the training run is known to meet it: the batches are a pure function of seed and
step), a checkpoint-every-4-steps config, and running `pwm` in-process."""

import sys
from pathlib import Path

from pwm.data import WindowDataset, WorldDataModule, open_dataset
from pwm.data.format import finalize, write_shard
from pwm.data.sampler import StepBatchSampler

CHECKPOINT_EVERY_4 = """
trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args:
        every_n_train_steps: 4
        save_last: true
        save_top_k: 0
"""


def run_pwm(argv: list[str], capsys, monkeypatch) -> tuple[int, list[str]]:
    """`pwm ARGV` in this process: (exit code, non-empty stderr lines)."""
    from pwm.cli import main as pwm_main

    monkeypatch.setattr(sys, "argv", ["pwm"])  # LightningCLI rewrites sys.argv
    capsys.readouterr()
    try:
        code = pwm_main(argv)
    except SystemExit as e:
        code = e.code
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def poisoned_copy(
    src: Path,
    dst: Path,
    value: float,
    window: int,
    batch_size: int,
    max_steps: int,
    earliest: int,
    rank: int = 0,
    world_size: int = 1,
) -> int:
    """Copy dataset `src` to `dst` with one `state` entry set to `value`; return the training step
    whose batch first holds it: at least `earliest`, before `max_steps - 1`, as late as possible,
    and seen by rank `rank` only (a `state`-observation run, split seed 0, sampler seed 0)."""
    dm = WorldDataModule(str(src), observation="state", window=window, batch_size=batch_size)
    windows = WindowDataset(src, "state", dm.train_episodes, window)
    first: list[dict] = []  # per rank: (episode, frame) -> first step whose batch holds it
    for r in range(world_size):
        sampler = StepBatchSampler(len(windows), batch_size, 0, 0, max_steps, r, world_size)
        first.append({})
        for step in range(max_steps):
            for i in sampler.batch(step):
                e, start = divmod(i, len(windows.starts))
                for t in range(start, start + window):
                    first[r].setdefault((int(dm.train_episodes[e]), t), step)
    never = max_steps
    candidates = [
        (step, key)
        for key, step in first[rank].items()
        if earliest <= step < max_steps - 1
        and all(first[r].get(key, never) > step for r in range(world_size) if r != rank)
    ]
    step, (episode, frame) = max(candidates)
    ds = open_dataset(src)
    state = ds.array("state")
    state[episode, frame, 0] = value
    dst.mkdir()
    begin = 0
    for i, shard in enumerate(ds.manifest["shards"]):
        end = begin + shard["episodes"]
        arrays = {name: ds.array(name)[begin:end] for name in ds.names}
        arrays["state"] = state[begin:end]
        write_shard(dst, i, arrays)
        begin = end
    keep = ("world", "config", "seed", "episodes_per_shard")
    assert finalize(dst, len(ds.manifest["shards"]), {k: ds.manifest[k] for k in keep})
    return step
