"""What a user sees (issue 31): progress of a fit in a log, no third-party noise, a warning for a
fit too short to be validated, the console summary and figures of a report."""

from __future__ import annotations

import subprocess
import sys

from pwm.cli import short_fit_warning
from pwm.probes import plots, summary
from pwm.progress import LogProgress

PWM = [sys.executable, "-m", "pwm.cli"]
NOISE = ("GPU available", "TPU available", "💡 Tip", "LeafSpec", "┏━", "Trainable params")


def test_fit_in_a_log_shows_progress_without_noise(toy_dataset, tmp_path):
    """Not a terminal (captured): a header, a line per tenth of the steps, a closing line."""
    res = subprocess.run(
        [*PWM, "fit", "-c", "experiments/base.yaml", "-c", "experiments/debug.yaml",
         f"--data.path={toy_dataset}", "--trainer.max_steps=10",
         f"--trainer.default_root_dir={tmp_path}",
         f"--trainer.logger.init_args.save_dir={tmp_path}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout + res.stderr
    lines = out.splitlines()
    assert any(line.startswith("fit: 10 steps, ") and line.endswith(" cpu") for line in lines)
    steps = [line for line in lines if line.startswith("  step ")]
    assert [s.split(":")[0] for s in steps] == [f"  step {i}/10" for i in range(1, 11)]
    assert "train/loss" in steps[-1] and any(line.startswith("fit: step 10 in ") for line in lines)
    # debug.yaml validates every 15 steps: 10 steps are never validated, and pwm says so first
    assert "pwm fit: warning: max_steps 10 < val_check_interval 15: no validation" in lines[0]
    for noise in NOISE:
        assert noise not in out, noise


def test_short_fit_warning():
    assert short_fit_warning(1000, 500) is None
    assert "no validation will run" in short_fit_warning(100, 500)
    assert "last validation (and last.ckpt) is at step 1000" in short_fit_warning(1200, 500)
    assert short_fit_warning(100, 0.5) is None  # a fraction of an epoch: not in steps
    assert short_fit_warning(-1, 500) is None  # no max_steps


def test_log_progress_prints_at_most_one_line_per_interval(capsys):
    with LogProgress(every=3600) as bar:  # nothing within the hour
        task = bar.add_task("x", total=3)
        bar.advance(task)
    assert capsys.readouterr().err == ""
    with LogProgress(every=0) as bar:
        task = bar.add_task("shards", total=2)
        bar.advance(task)
        bar.update(task, advance=1, description="shards done")
        bar.remove_task(task)
    err = capsys.readouterr().err.splitlines()
    assert [e.split(" (")[0] for e in err] == ["  shards: 1/2", "  shards done: 2/2"]


def _group(acc: float, frame_only: float | None = 1.0, passed: bool = True) -> dict:
    return {"paired_accuracy": acc, "ci": [acc - 0.1, min(1.0, acc + 0.1)], "pass": passed,
            "chance_band": [0.4, 0.6], "baselines": {"frame_only": frame_only}}  # fmt: skip


REPORT = {
    ("physical", "physics", "physics"): {"headline": 0.9, "comparisons": {
        "teleport": _group(0.96, None)}},
    ("political", "polis", "polis/justice"): {
        "headline": 0.6,
        "comparisons": {t: _group(a, passed=a > 0.7) for t, a in
                        (("M2", 0.98), ("R", 0.24), ("M1", 0.61), ("M1C", 0.5), ("Q", 1.0))},
        "history_effect": {"value": 0.22, "ci": [0.1, 0.3], "chance_band": [0.0, 0.1],
                           "pass": True, "baselines": {"frame_only": 0.99}},
        "verdict": {"claimed": False, "tests": {"M1": False, "R": False, "Q": True}},
    },
}  # fmt: skip


def test_brief_summary_is_a_few_rounded_lines():
    lines = summary.brief(REPORT)
    text = "\n".join(lines)
    assert len(lines) <= 14 and max(map(len, lines)) <= 100
    assert "physical (physics)  0.90" in text and "political (polis)   –" in text
    row = next(line for line in lines if line.strip().startswith("M2 "))
    assert row.split()[2:] == ["–", "0.98", "[0.88,", "1.00]*", "1.00"]
    assert "HE = M2 + R − 1" in text and "0.22 [0.10, 0.30]*" in text
    assert text.endswith("political no (Q pass)")


def test_report_figures_draw(tmp_path):
    blocks = summary.figure_blocks(REPORT)
    assert [b["title"] for b in blocks] == ["physics items", "polis/justice items"]
    assert list(blocks[1]["tests"]) == ["M2", "R", "M1", "M1C", "Q", "HE = M2 + R − 1"]
    path = plots.named_tests(blocks, tmp_path / "tests.png")
    assert path.stat().st_size > 10_000
    tau = list(range(-3, 4))
    curves = {c: {"mean": [0.0] * 7, "se": [0.1] * 7} for c in ("a", "b", "c")}
    comps = [{"name": "M2", "implausible": ["a"], "plausible": ["b"]},
             {"name": "Q", "implausible": ["a", "c"], "plausible": ["b", "b"]},
             {"name": "M2_K1", "implausible": ["a"], "plausible": ["b"], "K": 1}]  # fmt: skip
    acc = {"M2": (0.9, [0.8, 1.0]), "Q": None, "M2_K1": (0.5, [0.4, 0.6])}
    out = plots.comparison_curves(curves, tau, comps, acc, 4, "m on items", tmp_path / "c.png")
    assert out.stat().st_size > 10_000
