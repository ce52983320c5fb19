"""The study as jobs (experiments/launcher.py, issue 33): the job graph, SLURM submission with a
stand-in `sbatch`, and (slow) a tiny slice run with the local executor against the sequential run:
same numbers, finished jobs skipped, a failed job reported and resumed."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import launcher  # noqa: E402
import reproduce  # noqa: E402

SLICE = ["--part", "main", "report", "--obs", "state", "--worlds", "polis", "--seeds", "0", "1"]


def args_of(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--part", nargs="+", default=list(reproduce.PARTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--obs", nargs="+", default=["state"])
    p.add_argument("--worlds", nargs="+", default=["polis"])
    p.add_argument("--variants", nargs="+", default=[])
    p.add_argument("--scale", default="tiny")
    launcher.add_arguments(p)
    return p.parse_args(argv)


@pytest.fixture
def tiny():
    reproduce.set_scale("tiny")
    yield
    reproduce.set_scale("full")


def jobs_of(argv, keep_data=False) -> dict[str, launcher.Job]:
    args = args_of(*argv)
    jobs = launcher.plan(reproduce, lambda: reproduce.study(args), keep_data)
    return {j.key: j for j in jobs}


def test_the_job_graph_follows_the_data(tiny):
    jobs = jobs_of(SLICE)
    data = "data/study-tiny"
    assert [j.kind for j in jobs.values()] == ["dataset"] * 3 + ["fit", "probe"] * 2 + ["report"]
    assert set(jobs) >= {f"data {data}/polis", f"data {data}/polis_items",
                         f"data {data}/polis_consequence"}  # fmt: skip
    fit = jobs["fit study-tiny-political-state-sigreg-s1"]
    assert fit.deps == [f"data {data}/polis"] and fit.args[2] == 2
    probe = jobs["probe runs/study-tiny-probes/political-state-sigreg-s1"]
    assert set(probe.deps) == {fit.key, f"data {data}/polis_items", f"data {data}/polis",
                               f"data {data}/polis_consequence"}  # fmt: skip
    assert set(jobs["report"].deps) == {k for k in jobs if k.startswith("probe")}
    # with --part data every dataset of the study is a job, as the sequential run makes them all
    everything = jobs_of(SLICE, keep_data=True)
    assert sum(j.kind == "dataset" for j in everything.values()) == 9


def test_finished_jobs_are_found(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    jobs = jobs_of(SLICE)
    data = jobs["data data/study-tiny/polis"]
    assert not data.finished()
    Path(data.output).mkdir(parents=True)
    (Path(data.output) / "manifest.json").write_text("{}")
    assert data.finished() and not jobs["report"].finished()


def test_slurm_submits_every_job_after_what_it_needs(tiny, tmp_path, monkeypatch):
    """A stand-in `sbatch` records each submission and answers a job id."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "sbatch.log"
    (bin_ / "sbatch").write_text(
        "#!/bin/sh\n"
        f"n=$(($(cat {log} 2>/dev/null | wc -l) + 100))\n"
        f'echo "$n $1" >> {log}\n'
        'echo "Submitted batch job $n"\n'
    )
    (bin_ / "sbatch").chmod(0o755)
    (bin_ / "srun").write_text("#!/bin/sh\n")  # submitit looks for it
    (bin_ / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        launcher.Job, "finished", lambda self: self.key == "data data/study-tiny/polis"
    )
    args = args_of(*SLICE, "--launcher", "slurm", "--slurm-partition", "cpu",
                   "--slurm-param", "account=lab")  # fmt: skip
    code = launcher.launch(reproduce, lambda: reproduce.study(args), args, False, reproduce.STATE)
    assert code == 0
    lines = log.read_text().splitlines()
    scripts = {int(n): Path(f).read_text() for n, f in (line.split() for line in lines)}
    assert len(scripts) == 7  # 8 jobs, one finished
    ids = json.loads((tmp_path / "runs/jobs/reproduce/slurm_jobs.json").read_text())
    assert "data data/study-tiny/polis" not in ids
    for text in scripts.values():
        assert "#SBATCH --partition=cpu" in text and "#SBATCH --account=lab" in text
        assert "#SBATCH --kill-on-invalid-dep=yes" in text
    fit = scripts[int(ids["fit study-tiny-political-state-sigreg-s0"])]
    assert "--dependency" not in fit  # its training set is finished
    probe = scripts[int(ids["probe runs/study-tiny-probes/political-state-sigreg-s0"])]
    after = re.search(r"#SBATCH --dependency=afterok:(\S+)", probe).group(1).split(":")
    want = ["fit study-tiny-political-state-sigreg-s0", "data data/study-tiny/polis_items",
            "data data/study-tiny/polis_consequence"]  # fmt: skip
    assert sorted(after) == sorted(ids[k] for k in want)
    report = scripts[int(ids["report"])]
    assert len(re.search(r"afterok:(\S+)", report).group(1).split(":")) == 2


# ---- the tiny slice, really run --------------------------------------------------------------


def workdir(path: Path) -> Path:
    """A folder to run the study from: the code and configs linked, data and runs its own."""
    path.mkdir()
    for name in ("experiments", "pwm", "data_gen"):
        (path / name).symlink_to(ROOT / name)
    return path


def reproduce_in(cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "experiments/reproduce.py"), "--scale",
                           "tiny", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=1200)  # fmt: skip


def scores(cwd: Path) -> dict:
    """Per probe folder: every scorer's per-item event scores."""
    out = {}
    for m in sorted((cwd / "runs/study-tiny-probes").glob("*/metrics.json")):
        entry = json.loads(m.read_text())["items"][0]
        out[m.parent.name] = entry["per_item"]["scores"]
    return out


@pytest.mark.slow
def test_local_jobs_equal_the_sequential_run_skip_finished_and_resume_a_failure(tmp_path):
    seq = workdir(tmp_path / "sequential")
    res = reproduce_in(seq, *SLICE, "--threads", "1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = workdir(tmp_path / "jobs")
    res = reproduce_in(jobs, *SLICE, "--launcher", "local", "--jobs", "2", "--threads", "1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "8 jobs, 0 finished (skipped), 8 to run" in res.stdout
    started = [line.split(": ", 1)[1] for line in res.stdout.splitlines() if "] started:" in line]
    finished = [line.split(": ", 1)[1] for line in res.stdout.splitlines() if "] finished" in line]
    for a, b in (("data data/study-tiny/polis", "fit study-tiny-political-state-sigreg-s0"),
                 ("fit study-tiny-political-state-sigreg-s0",
                  "probe runs/study-tiny-probes/political-state-sigreg-s0")):  # fmt: skip
        assert finished.index(a) < started.index(b)
    assert started[-1] == "report"
    want = scores(seq)
    assert set(want) == {"political-state-sigreg-s0", "political-state-sigreg-s1"}
    np.testing.assert_equal(scores(jobs), want)  # the same numbers, bit for bit
    assert (jobs / "runs/study-tiny-results/REPORT.md").exists()

    again = reproduce_in(jobs, *SLICE, "--launcher", "local", "--jobs", "2", "--threads", "1")
    assert again.returncode == 0 and "8 jobs, 7 finished (skipped), 1 to run" in again.stdout

    # a probe that cannot write its folder fails; its report waits; the rest is unaffected
    victim = jobs / "runs/study-tiny-probes/political-state-sigreg-s1"
    for f in victim.iterdir():
        f.unlink()
    victim.rmdir()
    victim.write_text("in the way")
    failed = reproduce_in(jobs, *SLICE, "--launcher", "local", "--jobs", "2", "--threads", "1")
    assert failed.returncode == 1
    assert "FAILED: probe runs/study-tiny-probes/political-state-sigreg-s1" in failed.stdout
    assert "not started (needs a failed job): report" in failed.stdout
    assert "log: " in failed.stdout
    victim.unlink()
    resumed = reproduce_in(jobs, *SLICE, "--launcher", "local", "--jobs", "2", "--threads", "1")
    assert resumed.returncode == 0 and "2 to run" in resumed.stdout
    np.testing.assert_equal(scores(jobs), want)


def test_budget_counts_the_study_and_schedules_its_graph():
    import budget

    parts = budget.graph()
    jobs = [j for p in budget.PARTS for j in parts[p]]
    assert sum(j.kind == "fit" for j in jobs) == 174 and sum(j.kind == "dataset" for j in jobs) == 9
    assert all(budget.kind(j) in budget.COST for j in jobs)
    time = {j.key: budget.seconds(j, dict.fromkeys(("state", "pixels", "objects"), 1.0), 1.0)
            for j in jobs}  # fmt: skip
    one = budget.schedule(jobs, time, 1)
    assert one == pytest.approx(sum(time.values()))
    many = budget.schedule(jobs, time, 10_000)  # the longest chain of dependencies
    assert many < budget.schedule(jobs, time, 8) < one
    assert many >= max(time.values())
