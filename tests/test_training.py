"""End to end: what SIGReg is for, the CLI, and bad configs (issue: training core)."""

import subprocess
import sys

import lightning as L
import torch

from pwm.data import WorldDataModule
from pwm.models import EncoderConfig, PredictorConfig
from pwm.module import JEPAModule, OptimConfig

PWM = [sys.executable, "-m", "pwm.cli"]


def train_health(path, regularizer: str, steps: int = 300) -> tuple[float, float]:
    """Train a tiny state model; return (embedding std, effective rank) on validation windows."""
    L.seed_everything(0, verbose=False)
    dm = WorldDataModule(str(path), observation="state", window=5, batch_size=64)
    model = JEPAModule(
        observation="state",
        obs_size=dm.obs_size,
        action_dim=dm.action_dim,
        window=5,
        history=4,
        embed_dim=16,
        projector_hidden=64,
        encoder=EncoderConfig(width=64, depth=2),
        predictor=PredictorConfig(32, 1, 2, 16, 64, 0.0),
        regularizer=regularizer,
        num_directions=256,
        optim=OptimConfig(lr=1e-2, warmup_steps=10, weight_decay=0.0),
    )
    trainer = L.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, dm)
    model.eval()
    with torch.no_grad():
        batch = next(iter(dm.val_dataloader()))
        out = model.model_step(batch, "val")
    return float(out["z_std"]), float(out["z_rank"])


def test_sigreg_prevents_the_collapse_that_happens_without_it(toy_dataset):
    std_sig, rank_sig = train_health(toy_dataset, "sigreg")
    std_none, rank_none = train_health(toy_dataset, "none")
    print(
        f"sigreg: std {std_sig:.3f} rank {rank_sig:.2f}; "
        f"none: std {std_none:.3f} rank {rank_none:.2f}"
    )
    # measured (seed 0): sigreg std 0.83, rank 6.7 of D = 16; none std 0.10, rank 2.4
    assert std_sig > 0.6 and rank_sig > 5
    assert std_none < 0.2 and rank_none < 3.5


def test_pwm_fit_debug_preset_end_to_end(toy_dataset, tmp_path):
    cmd = [
        *PWM,
        "fit",
        "-c",
        "experiments/base.yaml",
        "-c",
        "experiments/debug.yaml",
        f"--data.path={toy_dataset}",
        "--trainer.max_steps=6",
        "--trainer.val_check_interval=3",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    run = tmp_path / "debug" / "version_0"
    metrics = (run / "metrics.csv").read_text()
    for key in ("train/pred_loss", "train/reg_loss", "train/z_rank", "val/loss"):
        assert key in metrics
    assert (run / "config.yaml").exists()
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.ckpt" in ckpts and any(c.startswith("best-") for c in ckpts)
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["hyper_parameters"]["world"] == "toy"


def test_fit_help_documents_options():
    res = subprocess.run([*PWM, "fit", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    for option in (
        "--model.history",
        "--model.lam",
        "--model.regularizer",
        "--data.window",
        "--model.encoder.patch_size",
        "--model.predictor.depth",
    ):
        assert option in res.stdout
    assert "frames of context the predictor attends to" in res.stdout


def test_val_batches_mix_episodes_in_one_fixed_order(toy_dataset):
    """Consecutive windows of one episode are near-identical frames: a val batch of them would
    make SIGReg and the embedding-health metrics meaningless. Fixed: the same at every call."""
    dm = WorldDataModule(path=str(toy_dataset), observation="state", window=4, batch_size=8)
    first, again = (next(iter(dm.val_dataloader())) for _ in range(2))
    assert torch.equal(first["obs"], again["obs"])
    ds = dm.val_dataloader().dataset
    order = list(dm.val_dataloader().sampler)
    assert sorted(order) == list(range(len(ds)))
    episodes = {i // len(ds.starts) for i in order[:8]}
    assert len(episodes) > 1, "a val batch holds windows of one episode only"
