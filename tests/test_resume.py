"""kill -9 during `pwm fit`, resume with --ckpt_path last: bit-for-bit the uninterrupted run."""

import csv
import signal
import subprocess
import sys
import time

import torch
from faults import CHECKPOINT_EVERY_4

PWM = [sys.executable, "-m", "pwm.cli"]


def fit_cmd(data, root, cfg, *extra):
    return [
        *PWM,
        "fit",
        "-c",
        "experiments/base.yaml",
        "-c",
        "experiments/debug.yaml",
        "-c",
        str(cfg),
        f"--data.path={data}",
        "--trainer.max_steps=24",
        "--trainer.deterministic=true",
        "--trainer.val_check_interval=12",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={root}",
        f"--trainer.logger.init_args.save_dir={root}",
        "--trainer.logger.init_args.version=0",
        *extra,
    ]


def train_losses(path) -> list[tuple[int, float]]:
    rows = csv.DictReader(open(path))
    return [(int(r["step"]), float(r["train/loss"])) for r in rows if r["train/loss"]]


def test_kill9_then_resume_equals_uninterrupted(toy_dataset, tmp_path):
    cfg = tmp_path / "ckpt.yaml"
    cfg.write_text(CHECKPOINT_EVERY_4)
    full, cut = tmp_path / "full", tmp_path / "cut"
    res = subprocess.run(
        fit_cmd(toy_dataset, full, cfg), capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-2000:]

    proc = subprocess.Popen(
        fit_cmd(toy_dataset, cut, cfg), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ckpt_dir = cut / "debug" / "version_0" / "checkpoints"
    deadline = time.time() + 300
    while not (ckpt_dir / "last.ckpt").exists():  # written atomically by Lightning
        assert proc.poll() is None and time.time() < deadline, "run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(ckpt_dir / "last.ckpt", weights_only=True)["global_step"]
    assert killed_at < 24

    res = subprocess.run(
        fit_cmd(toy_dataset, cut, cfg, "--ckpt_path=last"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    a = torch.load(full / "debug" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(ckpt_dir / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 24
    # the logged history survives the kill and equals the uninterrupted run's, step for step
    logged = [train_losses(run / "debug" / "version_0" / "metrics.csv") for run in (full, cut)]
    assert [s for s, _ in logged[0]] == [s for s, _ in logged[1]] and len(logged[0]) >= 4
    for (_, x), (_, y) in zip(*logged, strict=True):
        assert abs(x - y) < 1e-6
    for key, value in a["state_dict"].items():
        assert torch.allclose(value.float(), b["state_dict"][key].float(), atol=1e-6, rtol=0), key
