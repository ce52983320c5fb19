"""experiments/drift.py: weight and metric drift between two runs of the same recipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from drift import DriftError, drift  # noqa: E402


def save(run: Path, name: str, w: torch.Tensor) -> None:
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    sd = {"enc.weight": w, "steps": torch.tensor(3)}  # an integer buffer is not a weight
    torch.save({"state_dict": sd}, run / "checkpoints" / name)


def metrics(path: Path, r: float) -> None:
    path.mkdir(parents=True)
    outcomes = [1.0, 0.0] if r > 0.8 else [1.0, 1.0]
    model = {
        "comparisons": {"R": {"max": {"paired_accuracy": r, "ci": [r - 0.03, r + 0.03],
                                      "outcomes": outcomes}}},
        "history_effect": {"max": {"value": r - 0.1, "ci": [r - 0.15, r - 0.05]}},
    }  # fmt: skip
    per = {"scores": {"model": {"max": [1.0, 2.0 * r]}}}
    doc = {"items": [{"scorers": {"model": model}, "per_item": per}]}
    (path / "metrics.json").write_text(json.dumps(doc))


def test_weight_drift_per_common_step_and_probe_differences(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    w = torch.tensor([3.0, 4.0])
    save(a, "step-1000.ckpt", w)
    save(b, "step-1000.ckpt", w)
    save(a, "latest-step=3000.ckpt", w)
    save(b, "latest-step=3000.ckpt", w + torch.tensor([0.0, 0.5]))
    save(b, "step-2000.ckpt", w)  # only in b: not compared
    (a / "metrics.csv").write_text("step,train/loss,val/loss\n9,1.5,\n19,0.9,\n20,,0.8\n29,0.7,\n")
    (b / "metrics.csv").write_text("step,train/loss,val/loss\n9,1.5,\n19,0.91,\n29,0.7,\n")
    metrics(tmp_path / "pa", 0.80)
    metrics(tmp_path / "pb", 0.85)
    out = drift(a, b, (tmp_path / "pa", tmp_path / "pb"))
    assert list(out["weights"]) == [1000, 3000]
    assert out["weights"][1000] == {"max_abs": 0.0, "rel_l2": 0.0}
    assert out["losses"] == {"common_logged_steps": 3, "identical": 2, "first_difference": 19}
    assert out["weights"][3000]["max_abs"] == pytest.approx(0.5)
    assert out["weights"][3000]["rel_l2"] == pytest.approx(0.5 / 5.0)
    assert out["probe"]["R"]["diff"] == pytest.approx(0.05) and out["probe"]["R"]["beyond_ci"]
    assert out["probe"]["HE"]["a"] == pytest.approx(0.70)
    assert out["probe"]["R"]["pairs_flipped"] == 1
    assert out["scores"]["max_abs_diff"] == pytest.approx(0.1)
    assert out["scores"]["median_relative_diff"] == pytest.approx(0.1 / 1.6 / 2)


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DriftError, match="no checkpoints"):
        drift(tmp_path / "a", tmp_path / "a")
    save(tmp_path / "b", "step-1000.ckpt", torch.ones(2))
    save(tmp_path / "c", "step-2000.ckpt", torch.ones(2))
    res = subprocess.run([sys.executable, str(ROOT / "experiments" / "drift.py"),
                          str(tmp_path / "b"), str(tmp_path / "c")],
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 2 and "no checkpoint and logged no loss" in res.stderr
    assert res.stderr.count("\n") == 1
