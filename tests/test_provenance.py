"""Provenance (pwm/provenance.py): recorded beside every dataset, run and probe; read by `pwm
report`; replayed by `reproduce.py --rerun` (experiments/rerun.py).

One tiny physics run (12 episodes, 3 debug steps, a probe without chance networks) is made in
process and re-run from its recorded provenance: the re-run must give identical datasets,
weights and numbers. A subprocess version of the same check, through reproduce.py's command
line, carries the `slow` marker.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pwm import provenance
from pwm.cli import main as pwm_main
from pwm.data.format import sha256_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import reproduce  # noqa: E402
import rerun  # noqa: E402
import runner  # noqa: E402


def pwm(argv: list[str]) -> None:
    """One `pwm` command in this process, with sys.argv as the command line would set it."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(sys, "argv", ["pwm", *argv])
        assert pwm_main(argv) == 0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A generated dataset and item set, a 3-step debug fit and its probe (in process)."""
    root = tmp_path_factory.mktemp("prov")
    cfg = yaml.safe_load((ROOT / "experiments/voe.yaml").read_text())
    cfg |= {"chance_networks": 0, "bootstrap_resamples": 50}
    (root / "voe.yaml").write_text(yaml.safe_dump(cfg))
    common = ["--image-size", "32", "--seed", "0"]
    pwm(["generate", "physics", "--out", str(root / "data"), "--episodes", "12", "--frames",
         "16", *common])  # fmt: skip
    pwm(["items", "physics", "--out", str(root / "items"), "--items", "6", "--frames", "32",
         "--t-star-min", "8", "--t-star-max", "20", "--workers", "1", *common])  # fmt: skip
    pwm(["fit", "-c", "experiments/base.yaml", "-c", "experiments/debug.yaml",
         f"--data.path={root / 'data'}", "--trainer.max_steps=3", "--trainer.limit_val_batches=1",
         f"--trainer.default_root_dir={root}", f"--trainer.logger.init_args.save_dir={root}",
         "--trainer.enable_progress_bar=false"])  # fmt: skip
    ckpt = next(root.rglob("last.ckpt"))
    pwm(["probe", "--ckpt", str(ckpt), "--items", str(root / "items"), "--out",
         str(root / "probe"), "--name", "phys", "--config", str(root / "voe.yaml")])  # fmt: skip
    return root, ckpt


def test_collect_names_code_command_versions_and_machine(tmp_path):
    argv = [str(ROOT / ".venv/bin/pwm"), "fit", f"--data.path={ROOT / 'data/x'}", "-c", "a.yaml"]
    record = provenance.collect(argv=argv)
    assert record["argv"] == ["pwm", "fit", "--data.path=data/x", "-c", "a.yaml"]
    assert set(record["git"]) == {"commit", "dirty", "changed", "diff_sha256"}
    assert {"python", "torch", "numpy", "pwm"} <= set(record["versions"])
    assert record["machine"]["torch_threads"] >= 1 and record["machine"]["cpu_model"]
    assert str(ROOT) not in json.dumps(record)  # no directory of this machine


def test_without_git_or_outside_a_checkout_everything_is_unknown(tmp_path, monkeypatch):
    assert provenance.git_state(tmp_path)["commit"] == provenance.UNKNOWN
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on the PATH
    provenance.repo_root.cache_clear()
    try:
        record = provenance.collect(argv=["pwm", "probe"])
    finally:
        provenance.repo_root.cache_clear()
    assert record["git"]["commit"] == record["git"]["dirty"] == provenance.UNKNOWN


def test_write_appends_and_refuses_a_foreign_file(tmp_path):
    provenance.write(tmp_path, {"n": 1})
    provenance.write(tmp_path, {"n": 2})
    assert provenance.read(tmp_path) == [{"n": 1}, {"n": 2}]
    (tmp_path / "provenance.json").write_text("not json")
    with pytest.raises(ValueError, match="not a provenance file"):
        provenance.write(tmp_path, {"n": 3})


def test_dataset_provenance_is_beside_the_manifest_which_stays_byte_identical(run, tmp_path):
    root, _ = run
    again = tmp_path / "data"
    pwm(["generate", "physics", "--out", str(again), "--episodes", "12", "--frames", "16",
         "--image-size", "32", "--seed", "0"])  # fmt: skip
    assert (again / "manifest.json").read_bytes() == (root / "data" / "manifest.json").read_bytes()
    manifest = json.loads((again / "manifest.json").read_text())
    assert "provenance.json" not in json.dumps(manifest)
    record = provenance.dataset_record(again)
    assert record["manifest_sha256"] == sha256_file(root / "data" / "manifest.json")
    assert record["generated_by"][0]["argv"][:3] == ["pwm", "generate", "physics"]


def test_a_kept_dataset_names_its_commit_and_warns_when_made_otherwise(run, capsys):
    root, _ = run
    same = ["--episodes", "12", "--frames", "16", "--image-size", "32", "--seed", "0"]
    runner.dataset("generate", "physics", root / "data", *same)
    out = capsys.readouterr().out
    assert "exists, kept (generated at " in out and "warning" not in out
    runner.dataset("generate", "physics", root / "data", *same[:-1], "1")
    assert "was made by `pwm generate physics" in capsys.readouterr().out
    before = sorted(p.name for p in (root / "data").iterdir())
    with pytest.raises(SystemExit) as e:  # the demo's strict mode: one line, exit 2
        runner.dataset("generate", "physics", root / "data", *same, "--state-links", strict=True)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "\n" not in err and "delete it to make it anew" in err
    assert sorted(p.name for p in (root / "data").iterdir()) == before
    runner.dataset("generate", "physics", root / "data", *same, strict=True)  # same: kept


def test_run_and_probe_record_inputs_checkpoint_and_config(run):
    root, ckpt = run
    fit = provenance.read(ckpt.parent.parent)
    assert len(fit) == 1 and fit[0]["argv"][:2] == ["pwm", "fit"]
    assert fit[0]["inputs"]["data"]["manifest_sha256"] == sha256_file(root / "data/manifest.json")
    assert fit[0]["run"]["config"]["trainer"]["max_steps"] == 3
    assert (ckpt.parent.parent / "config.yaml").is_file()
    prov = json.loads((root / "probe" / "metrics.json").read_text())["provenance"]
    assert prov["argv"][:2] == ["pwm", "probe"]
    assert prov["checkpoint"]["sha256"] == sha256_file(ckpt)
    assert prov["checkpoint"]["run"] == fit
    items = prov["inputs"][f"items:{root / 'items'}"]
    assert items["manifest_sha256"] == sha256_file(root / "items" / "manifest.json")


@pytest.mark.slow
def test_a_resumed_run_appends_its_invocation(run, tmp_path):
    root, _ = run
    args = ["fit", "-c", "experiments/base.yaml", "-c", "experiments/debug.yaml",
            f"--data.path={root / 'data'}", "--trainer.limit_val_batches=1",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--trainer.logger.init_args.version=0", f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false"]  # fmt: skip
    pwm([*args, "--trainer.max_steps=2"])
    pwm([*args, "--trainer.max_steps=4", "--ckpt_path=last"])
    runs = provenance.read(tmp_path / "debug" / "version_0")
    assert [r["run"]["ckpt_path"] for r in runs] == [None, "last"]


def test_report_states_commits_and_flags_runs_that_differ(run, tmp_path):
    root, _ = run
    dirs = [tmp_path / n for n in ("a-s0", "b-s1", "old-s0")]
    for d in dirs:
        shutil.copytree(root / "probe", d)
    b = json.loads((dirs[1] / "metrics.json").read_text())
    next(iter(b["provenance"]["inputs"].values()))["manifest_sha256"] = "0" * 64
    b["provenance"]["git"] |= {"commit": "f" * 40, "dirty": True}
    (dirs[1] / "metrics.json").write_text(json.dumps(b))
    old = json.loads((dirs[2] / "metrics.json").read_text())
    del old["provenance"]
    (dirs[2] / "metrics.json").write_text(json.dumps(old))
    pwm(["report", *map(str, dirs), "--out", str(tmp_path / "REPORT.md")])
    text = (tmp_path / "REPORT.md").read_text()
    section = text[text.index("## Provenance") :]
    assert "| no provenance recorded | – | 1: old-s0 |" in section
    assert "| fffffff (dirty) | 1: b-s1 |" in section
    assert "code differs from the report's: 1 run(s): b-s1" in section
    flag = next(line for line in section.splitlines() if line.startswith("- uncommitted"))
    assert "b-s1" in flag  # (a-s0 too when this checkout has uncommitted changes)
    assert f"dataset differs: {root / 'items'}: 1 run(s): b-s1" in section
    lineage = json.loads((tmp_path / "REPORT_provenance.json").read_text())
    assert lineage["runs"]["old-s0"] == provenance.NONE_RECORDED
    assert lineage["datasets"][str(root / "items")]["runs_differing"] == ["b-s1"]
    assert "phys / physics / physics" in json.loads((tmp_path / "REPORT.json").read_text())


def test_rewrite_sets_values_maps_datasets_and_drops_split_options():
    argv = ["items", "polis", "--out=a", "--workers", "2", "--shard", "1", "--overwrite", "-x"]
    assert rerun._rewrite(argv, {"--out": "b"}, {}, rerun.SPLIT) == ["items", "polis", "--out=b",
                                                                     "-x"]  # fmt: skip
    argv = ["--ckpt", "c", "--items", "d/i", "--probe-data=d/p", "--name", "n"]
    out = rerun._rewrite(argv, {"--ckpt": "C", "--out": "o"}, {"d/i": "I", "d/p": "P"}, {})
    assert out == ["--ckpt", "C", "--items", "I", "--probe-data=P", "--name", "n", "--out", "o"]


def test_rerun_from_provenance_gives_identical_numbers(run, tmp_path, capsys):
    root, _ = run
    before = (root / "probe" / "metrics.json").read_bytes()
    assert rerun.rerun(root / "probe", tmp_path / "runs", pwm) == 0
    out = capsys.readouterr().out
    assert out.count("manifest identical") == 2 and "checkpoint weights: identical" in out
    assert "items teleport: " in out and "missing" not in out
    assert "max |difference| by part: none" in out
    assert out.strip().endswith(": 0")
    (scratch,) = (tmp_path / "runs").iterdir()
    assert scratch.name.startswith("rerun-probe-") and (scratch / "probe/metrics.json").is_file()
    assert (root / "probe" / "metrics.json").read_bytes() == before


def test_rerun_refuses_a_probe_without_provenance(run, tmp_path, monkeypatch, capsys):
    root, _ = run
    old = json.loads((root / "probe" / "metrics.json").read_text())
    del old["provenance"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.json").write_text(json.dumps(old))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["reproduce.py", "--rerun", str(tmp_path / "old")])
    with pytest.raises(SystemExit) as e:
        reproduce.main()
    assert e.value.code == 2 and not (tmp_path / "runs").exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("reproduce.py --rerun: error: no provenance recorded") and "\n" not in err


@pytest.mark.slow
def test_rerun_through_the_command_line(run):
    """`python experiments/reproduce.py --rerun DIR`, each step in its own process."""
    root, _ = run
    argv = [sys.executable, "experiments/reproduce.py", "--rerun", str(root / "probe")]
    res = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    scratch = ROOT / res.stdout.splitlines()[0].split(" into ")[1]
    try:
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        assert "checkpoint weights: identical" in res.stdout
    finally:
        shutil.rmtree(scratch)


def test_git_state_names_every_changed_path_whole(tmp_path):
    """`git status --porcelain` starts a worktree change with a space (" M path"): the first
    changed path keeps its first character (an earlier version stripped the output)."""
    import subprocess

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "alpha.txt").write_text("a\n")
    (tmp_path / "beta.txt").write_text("b\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x")
    clean = provenance.git_state(tmp_path)
    assert clean["dirty"] is False and clean["changed"] == [] and clean["diff_sha256"] is None
    (tmp_path / "alpha.txt").write_text("changed\n")
    (tmp_path / "new.txt").write_text("n\n")
    state = provenance.git_state(tmp_path)
    assert state["dirty"] is True and state["changed"] == ["alpha.txt", "new.txt"]
    assert len(state["diff_sha256"]) == 64


def test_rerun_compare_lists_numbers_only_the_re_run_has_and_fails_on_lost_ones():
    def metrics(**slope):
        return {"config": {"primary": "max"}, "items": [{"name": "polis", "scorers": {"model": {
            "comparisons": {"R": {"max": {"paired_accuracy": 0.8, "ci": [0.7, 0.9], "d_z": 1.0}}},
            "dose_slope": {"max": {"slope": 0.05, "mean_diff": [0.1, 0.2], **slope}}}}}],
        }  # fmt: skip

    old, new = metrics(), metrics(diff=[0.1, 0.2])  # the newer probe also stores the rows
    lines, worst = rerun.compare(old, new)
    assert worst == 0.0 and "by part: none" in lines[-3]
    assert lines[-1].startswith("only in the re-run (not recorded, not compared): 2 numbers in ")
    lines, worst = rerun.compare(new, old)  # a recorded number the re-run lost is a difference
    assert worst == float("inf") and not any(line.startswith("only in") for line in lines)
    new["items"][0]["scorers"]["model"]["dose_slope"]["max"]["slope"] = 0.06
    assert rerun.compare(old, new)[1] == pytest.approx(0.01)
    # one more element of a recorded list is a difference, not a new field
    longer = metrics()
    longer["items"][0]["scorers"]["model"]["dose_slope"]["max"]["mean_diff"].append(0.3)
    assert rerun.compare(old, longer)[1] == float("inf")
