"""`pwm probe` and `pwm report` end to end on a debug-trained physics checkpoint, and bad input.

The model is trained for a few steps (`pwm fit` with the debug preset on a small physics set):
the point is the plumbing, not the numbers. The random-init baseline is one more network of
the same architecture, so it must fall inside the chance band the other networks make.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from data_gen.cli import main as data_main
from pwm.cli import main as pwm_main
from pwm.data.format import sha256_file
from pwm.data.manifest import seal
from pwm.models import EncoderConfig, PredictorConfig
from pwm.module import JEPAModule
from pwm.probes.checkpoint import load_checkpoint
from pwm.probes.cli import build_parser
from pwm.probes.config import load_config
from pwm.probes.items import open_items
from pwm.probes.surprise import run_model

PWM = [sys.executable, "-m", "pwm.cli"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    common = ["--image-size", "32", "--seed", "0"]
    assert (
        data_main(
            [
                "generate",
                "physics",
                "--out",
                str(root / "data"),
                "--episodes",
                "12",
                "--frames",
                "16",
                *common,
            ]
        )
        == 0
    )
    assert (
        data_main(
            [
                "items",
                "physics",
                "--out",
                str(root / "items"),
                "--items",
                "6",
                "--frames",
                "32",
                "--t-star-min",
                "8",
                "--t-star-max",
                "20",
                *common,
            ]
        )
        == 0
    )
    fit = subprocess.run(
        [
            *PWM,
            "fit",
            "-c",
            "experiments/base.yaml",
            "-c",
            "experiments/debug.yaml",
            f"--data.path={root / 'data'}",
            "--trainer.max_steps=3",
            "--trainer.limit_val_batches=1",
            f"--trainer.default_root_dir={root}",
            f"--trainer.logger.init_args.save_dir={root}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fit.returncode == 0, fit.stderr[-2000:]
    ckpt = next(root.rglob("last.ckpt"))
    res = subprocess.run(
        [
            *PWM,
            "probe",
            "--ckpt",
            str(ckpt),
            "--items",
            str(root / "items"),
            "--out",
            str(root / "run"),
            "--name",
            "phys",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return root, ckpt


def test_probe_writes_metrics_table_and_figures(setup):
    root, _ = setup
    run = root / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    entry = metrics["items"][0]
    assert metrics["model"]["world"] == "physics" and entry["world"] == "physics"
    assert set(entry["scorers"]) == {"model", "random_init", "pixel_diff", "ideal_observer"}
    model = entry["scorers"]["model"]
    for comp in ("teleport", "vanish", "pass_through", "acceleration", "selectivity"):
        for agg in ("max", "mean"):
            block = model["comparisons"][comp][agg]
            assert 0 <= block["paired_accuracy"] <= 1 and len(block["chance_band"]) == 2
    assert model["comparisons"]["teleport"]["n_pairs"] == 6
    assert (
        entry["scorers"]["ideal_observer"]["comparisons"]["teleport"]["max"]["paired_accuracy"] == 1
    )
    # identical prefixes: no difference before t* (time lock)
    assert all(t["locked"] for t in model["time_lock"].values())
    assert len(entry["chance"]["values"]["teleport"]["max"]) == metrics["config"]["chance_networks"]
    assert set(entry["linear_probes"]["targets"]) == {"positions", "velocities"}
    # physics: every lawful item has ideal surprisal 0, so rho over lawful items is undefined
    assert all(model["spearman_ideal_lawful"][a]["rho"] is None for a in ("max", "mean"))
    table = (run / "metrics.md").read_text()
    assert "| teleport | 6 |" in table and "rho lawful max" in table
    assert {p.name for p in run.glob("*.png")} == {"curves_items.png", "probes_items.png"}


def test_random_model_falls_inside_its_own_chance_band(setup):
    entry = json.loads((setup[0] / "run" / "metrics.json").read_text())["items"][0]
    rand = entry["scorers"]["random_init"]
    cells = [(c, a, b[a]) for c, b in rand["comparisons"].items() for a in ("max", "mean")]
    inside = [
        lo <= v["paired_accuracy"] <= hi for _, _, v in cells for lo, hi in [v["chance_band"]]
    ]
    for a in ("max", "mean"):
        lo, hi = rand["auroc_chance_band"][a]
        inside.append(lo <= rand["auroc"][a] <= hi)
    print(f"random init inside its chance band in {sum(inside)}/{len(inside)} cells")
    assert sum(inside) >= 0.75 * len(inside)


def test_report_aggregates_runs_with_heatmap(setup, tmp_path):
    root, _ = setup
    second = tmp_path / "seed2"
    shutil.copytree(root / "run", second)
    assert (
        pwm_main(["report", str(root / "run"), str(second), "--out", str(tmp_path / "REPORT.md")])
        == 0
    )
    text = (tmp_path / "REPORT.md").read_text()
    assert "phys (trained on physics) on physics items — 2 seed(s)" in text
    assert (tmp_path / "REPORT_heatmap.png").exists() and (tmp_path / "REPORT_tests.png").exists()
    assert "![tests](REPORT_tests.png)" in text and "![heatmap](REPORT_heatmap.png)" in text
    summary = json.loads((tmp_path / "REPORT.json").read_text())
    assert summary["phys / physics / physics"]["comparisons"]["teleport"]["seeds"] == 2


def test_calibration_and_probe_data_from_held_out_datasets(setup, tmp_path):
    root, ckpt = setup
    cfg = yaml.safe_load(open("experiments/voe.yaml"))
    cfg |= {"chance_networks": 0, "bootstrap_resamples": 100}
    (tmp_path / "voe.yaml").write_text(yaml.safe_dump(cfg))
    argv = ["probe", "--ckpt", str(ckpt), "--items", str(root / "items"), "--out",
            str(tmp_path / "o"), "--config", str(tmp_path / "voe.yaml"),
            "--calib", str(root / "data"), "--probe-data", str(root / "data")]  # fmt: skip
    assert pwm_main(argv) == 0
    entry = json.loads((tmp_path / "o" / "metrics.json").read_text())["items"][0]
    cal = entry["calibration"]
    assert (
        cal["model"]["source"] == "--calib data" and cal["pixel_diff"]["source"] == "--calib data"
    )
    assert cal["model"]["frames"] == 12 * (16 - 4)  # every frame t >= H of the 12 episodes
    assert entry["linear_probes"]["source"].startswith("--probe-data data")
    assert entry["scorers"]["model"]["comparisons"]["teleport"]["max"]["chance_band"] is None


def test_probe_and_report_replace_results_only_with_overwrite(setup, tmp_path, capsys):
    """A finished probe or report is never replaced silently; --overwrite replaces the probe's
    own files (an earlier model's figures included) and keeps everything else."""
    root, ckpt = setup
    cfg = yaml.safe_load(open("experiments/voe.yaml"))
    cfg |= {"chance_networks": 0, "bootstrap_resamples": 100}
    (tmp_path / "voe.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "o"
    shutil.copytree(root / "run", out)
    (out / "curves_other_model.png").write_bytes(b"an earlier model's figure")
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    argv = ["probe", "--ckpt", str(ckpt), "--items", str(root / "items"), "--out", str(out),
            "--config", str(tmp_path / "voe.yaml"), "--name", "again"]  # fmt: skip
    assert "already holds a probe run; pass --overwrite" in one_line_error(capsys, argv)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert pwm_main([*argv, "--overwrite"]) == 0
    assert json.loads((out / "metrics.json").read_text())["model"]["name"] == "again"
    assert not (out / "curves_other_model.png").exists() and (out / "notes.txt").exists()
    report = tmp_path / "R.md"
    assert pwm_main(["report", str(root / "run"), "--out", str(report)]) == 0
    first = report.read_text()
    msg = one_line_error(capsys, ["report", str(out), "--out", str(report)])
    assert "exists; pass --overwrite" in msg and report.read_text() == first
    assert pwm_main(["report", str(out), "--out", str(report), "--overwrite"]) == 0
    assert "again" in report.read_text() and report.read_text() != first


def test_the_default_probe_config_does_not_depend_on_the_current_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    default = Path(build_parser().get_default("config"))
    assert default.is_absolute() and load_config(default).primary == "max"


def test_surprise_matches_teacher_forcing_and_cropping(setup):
    root, ckpt = setup
    module = load_checkpoint(ckpt)
    items = open_items(root / "items")
    H, w, ep, ts = 4, 3, items.episodes[:5], items.t_star[:5]
    full, emb = run_model(module.model, items.dataset, "pixels", H, episodes=ep, embeddings=True)
    assert full.shape == (5, 32) and np.isnan(full[:, :H]).all() and np.isfinite(full[:, H:]).all()
    # s(t) by hand for one frame: predict z_t from z_{t-H..t-1} and a_{t-H..t-1}
    t = int(ts[0])
    z = torch.from_numpy(emb[:1])  # (1, T, D)
    a = torch.from_numpy(items.dataset.array("actions")[ep[:1]].astype(np.float32))  # (1, T, A)
    with torch.no_grad():
        pred = module.model.predict(z[:, t - H : t], a[:, t - H : t])[:, -1]  # (1, D)
    assert full[0, t] == pytest.approx(float(((pred - z[:, t]) ** 2).mean()), rel=1e-5)
    crop, _ = run_model(
        module.model, items.dataset, "pixels", H, episodes=ep, crop=(ts - H, H + w + 1)
    )
    window = full[np.arange(5)[:, None], ts[:, None] + np.arange(w + 1)]  # (5, w + 1)
    assert np.allclose(crop[:, H:], window, rtol=1e-5, atol=1e-7)


def one_line_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as e:
        pwm_main(argv)
    assert e.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pwm {argv[0]}: error: "), lines
    return lines[0]


def test_bad_inputs_fail_with_one_line(setup, tmp_path, capsys):
    root, ckpt = setup
    run = ["probe", "--out", str(tmp_path / "o")]
    items = ["--items", str(root / "items")]
    # a checkpoint of another world / of another observation shape
    state = torch.load(ckpt, weights_only=True)
    state["hyper_parameters"]["world"] = "polis"
    torch.save(state, tmp_path / "polis.ckpt")
    msg = one_line_error(capsys, [*run, "--ckpt", str(tmp_path / "polis.ckpt"), *items])
    assert "trained on 'polis'" in msg and "--cross-world" in msg
    big = JEPAModule(
        obs_size=64,
        action_dim=2,
        window=8,
        history=4,
        world="physics",
        embed_dim=16,
        projector_hidden=16,
        encoder=EncoderConfig(16, 16, 1, 2),
        predictor=PredictorConfig(16, 1, 2, 8, 16),
    )
    torch.save(
        {"hyper_parameters": dict(big.hparams), "state_dict": big.state_dict()},
        tmp_path / "big.ckpt",
    )
    msg = one_line_error(capsys, [*run, "--ckpt", str(tmp_path / "big.ckpt"), *items])
    assert "(64, 64, 3)" in msg and "(32, 32, 3)" in msg
    # a training dataset, not an item set
    msg = one_line_error(capsys, [*run, "--ckpt", str(ckpt), "--items", str(root / "data")])
    assert "is a training dataset, not an item set" in msg
    # a condition with no items (all 'vanish' items removed, checksum updated)
    cut = tmp_path / "cut"
    shutil.copytree(root / "items", cut)
    meta = json.loads((cut / "items.json").read_text())
    meta["items"] = [it for it in meta["items"] if it["condition"] != "vanish"]
    (cut / "items.json").write_text(json.dumps(meta))
    manifest = json.loads((cut / "manifest.json").read_text())
    manifest["extra_files"]["items.json"] = sha256_file(cut / "items.json")
    (cut / "manifest.json").write_text(json.dumps(seal(manifest)))
    msg = one_line_error(capsys, [*run, "--ckpt", str(ckpt), "--items", str(cut)])
    assert "'vanish'" in msg and "has no items" in msg
    # a window that leaves the episode
    cfg = yaml.safe_load(open("experiments/voe.yaml"))
    cfg["window"] = 20
    (tmp_path / "voe.yaml").write_text(yaml.safe_dump(cfg))
    msg = one_line_error(
        capsys, [*run, "--ckpt", str(ckpt), *items, "--config", str(tmp_path / "voe.yaml")]
    )
    assert "leaves the episode" in msg
    assert not (tmp_path / "o").exists()  # checked before any output
    # no such checkpoint; a report of a directory that is not a probe run
    assert "not found" in one_line_error(capsys, [*run, "--ckpt", str(tmp_path / "x"), *items])
    msg = one_line_error(capsys, ["report", str(tmp_path), "--out", str(tmp_path / "R.md")])
    assert "no metrics.json" in msg
