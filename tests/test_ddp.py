"""`pwm fit` under DDP: two CPU processes (gloo) complete, and the SIGReg they log is the
single-process value on the global batch (DESIGN 5.1, 7).

The run uses lr = 0, so its checkpoint holds the weights every logged step was computed with.
The reference recomputes, in this process, the embeddings of each rank's part of the global batch
(from `StepBatchSampler`, the sampler the run used) and SIGReg on their concatenation. Each rank's
part is encoded on its own because BatchNorm in the projector normalises with per-rank batch
statistics under DDP; `--trainer.sync_batchnorm true` makes the statistics global, but torch's
SyncBatchNorm runs on GPUs only. What the test pins is SIGReg's contract: the logged value is the
statistic of the whole global batch, not a per-rank one.
"""

import csv
import subprocess
import sys

import numpy as np
import pytest
import torch
from einops import rearrange
from faults import poisoned_copy
from torch.utils.data import default_collate

from pwm.checkpoint import load_world_model
from pwm.data import WindowDataset, WorldDataModule
from pwm.data.sampler import StepBatchSampler
from pwm.losses import SIGReg

B, STEPS = 8, 2


def ddp_fit(data, root, *extra: str) -> list[str]:
    return [
        *(sys.executable, "-m", "pwm.cli", "fit"),
        *("-c", "experiments/base.yaml", "-c", "experiments/debug.yaml"),
        f"--data.path={data}",
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.accelerator=cpu",
        "--trainer.deterministic=true",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={root}",
        f"--trainer.logger.init_args.save_dir={root}",
        *extra,
    ]


def logged(path, key: str) -> list[float]:
    return [float(r[key]) for r in csv.DictReader(open(path)) if r.get(key)]


def test_two_process_ddp_fit_logs_the_global_batch_sigreg(toy_dataset, tmp_path):
    cmd = ddp_fit(
        toy_dataset,
        tmp_path,
        f"--data.batch_size={B}",
        f"--trainer.max_steps={STEPS}",
        "--trainer.log_every_n_steps=1",
        f"--trainer.val_check_interval={STEPS}",
        "--trainer.limit_val_batches=1",
        "--model.predictor.dropout=0",
        "--model.optim.lr=0",
    )
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "debug" / "version_0"
    reg = logged(run / "metrics.csv", "train/reg_loss")
    assert len(reg) == STEPS

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == STEPS
    model, hp = load_world_model(run / "checkpoints" / "last.ckpt")
    model.train()  # BatchNorm as in training: batch statistics
    sigreg = SIGReg(hp["num_directions"])  # the run's regulariser (seed 0)
    dm = WorldDataModule(str(toy_dataset), observation=hp["observation"], window=hp["window"])
    windows = WindowDataset(toy_dataset, hp["observation"], dm.train_episodes, hp["window"])
    seed = dm.hparams.split_seed  # the sampler seed of the run (base.yaml: 0)
    with torch.no_grad():
        for step in range(STEPS):
            z = []  # each rank's embeddings of its part of global batch `step`
            for rank in (0, 1):
                sampler = StepBatchSampler(len(windows), B, seed, 0, STEPS, rank=rank, world_size=2)
                batch = default_collate([windows[i] for i in sampler.batch(step)])
                z.append(model.encode(batch["obs"]))  # (B, L, D)
            z_global = rearrange(torch.cat(z), "b t d -> t b d")  # (L, 2B, D)
            expected = float(sigreg(z_global, step=step))
            assert abs(reg[step] - expected) <= 1e-5 * abs(expected), (step, reg[step], expected)
            # a per-rank statistic (what an un-reduced SIGReg would log) is measurably different
            local = float(sigreg(rearrange(z[0], "b t d -> t b d"), step=step))
            assert abs(local - expected) > 1e-3 * abs(expected)


@pytest.mark.slow
def test_a_nan_seen_by_rank_0_alone_stops_both_ranks(toy_dataset, tmp_path):
    """Both ranks stop at the same step with the same message. Without the joint decision rank 1
    is left in a gradient all-reduce with a peer that has gone (gloo: it dies of a connection
    error; other backends can wait until the collective timeout). With SIGReg both ranks see the
    NaN through its all-reduce; without a regulariser only rank 0 does, so that is the test."""
    data = tmp_path / "poisoned"
    step = poisoned_copy(toy_dataset, data, np.nan, 8, B, 10, earliest=3, rank=0, world_size=2)
    cmd = ddp_fit(
        data,
        tmp_path,
        *("--data.observation=state", "--data.window=8", f"--data.batch_size={B}"),
        *("--trainer.max_steps=10", "--trainer.limit_val_batches=0", "--model.regularizer=none"),
    )
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-3000:]
    # one error per rank (their lines may interleave), both at the same step
    assert res.stderr.count("pwm fit: error:") == 2, res.stderr[-3000:]
    assert f"non-finite loss at step {step} (pred_loss=nan" in res.stderr
    assert f"non-finite loss at step {step} (on another rank)" in res.stderr
