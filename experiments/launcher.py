"""A study as independent jobs through submitit (issue 33): N at a time on this machine, or SLURM.

    python experiments/reproduce.py [study options] --launcher local --jobs 2
    python experiments/reproduce.py [study options] --launcher slurm --slurm-partition cpu

The study's own code (reproduce.py, law_study.py) is run once with its steps (runner.dataset,
runner.fit, runner.probe and the study's `report`) replaced by recorders: that gives every step
the sequential run would take, with the very arguments it would pass, in its order. Each step
becomes a job; a job depends on the jobs that make what it reads (a fit on its training set, a
probe on its fit and on every dataset it names, the report on every probe), found by path. A job
runs the same step function in its own process, so it makes the same files as the sequential
run. Dataset jobs that no other job needs are dropped unless `--part data` is asked for.

- `local`: submitit's LocalExecutor; this process starts up to `--jobs` jobs at a time, each as
  soon as the jobs it depends on have finished, with `--threads` torch/OpenMP threads each
  (default: the cores divided by the jobs), and waits for all of them.
- `slurm`: submitit's SlurmExecutor; every job is submitted at once with `afterok` dependencies
  on the unfinished jobs it needs (and `--kill-on-invalid-dep=yes`, so the dependents of a failed
  job leave the queue), and this process exits. The job ids are kept in the jobs folder, so a
  second launch does not submit again a job that is still pending or running.

Finished jobs are skipped (a dataset with its manifest, a fit at max_steps, a probe with its
metrics.json: the checks runner.py makes); a killed fit resumes from its last checkpoint. A job
that fails is reported with the path of its log, the jobs that need it are not started, the
others go on, and the launch exits non-zero; launching the same command again runs what is left.
Every job's submitit folder (command, stdout, stderr, result) is
`runs/jobs/<study>/<job>/`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import runner

EXPERIMENTS = Path(__file__).resolve().parent
ROOT = EXPERIMENTS.parent
LIVE = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING"}


@dataclass
class Job:
    """One step of a study: `kind` (dataset, fit, probe, report) called with `args`."""

    key: str
    kind: str
    args: tuple
    output: str  # the path it makes ("" for the report)
    deps: list[str] = field(default_factory=list)  # keys of the jobs it needs

    @property
    def name(self) -> str:
        """A file-system-safe name (the job's folder under runs/jobs/<study>/)."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.key).strip("_")

    def finished(self) -> bool:
        """Whether the step would be skipped by runner.py (the report is always run)."""
        if self.kind == "dataset":
            return (Path(self.output) / "manifest.json").exists()
        if self.kind == "probe":
            return (Path(self.output) / "metrics.json").exists()
        if self.kind == "fit":
            ckpt = Path(self.output)
            if not ckpt.exists():
                return False
            import torch  # here: a job's process need not import it

            step = torch.load(ckpt, weights_only=True, map_location="cpu")["global_step"]
            return step >= self.args[2]
        return False


class Recorder:
    """Stand-ins for the steps: each call records a job and returns what the step would."""

    def __init__(self):
        self.jobs: dict[str, Job] = {}
        self.made: dict[str, str] = {}  # output path -> key of the job that makes it

    def _add(self, job: Job, reads: list[str]) -> None:
        if job.key in self.jobs:  # a step asked for twice (law_study: one physical run per seed)
            if self.jobs[job.key].args != job.args:
                raise ValueError(f"{job.key} asked for with two sets of arguments")
            return
        job.deps = list(dict.fromkeys(self.made[p] for p in reads if p in self.made))
        self.jobs[job.key] = job
        if job.output:
            self.made[job.output] = job.key

    def dataset(self, command: str, world: str, out: Path, *options: str) -> Path:
        self._add(Job(f"data {out}", "dataset", (command, world, out, *options), str(out)), [])
        return out

    def fit(self, name: str, configs: list[str], max_steps: int, *overrides: str) -> Path:
        ckpt = runner.checkpoint_path(name)
        reads = [o.split("=", 1)[1] for o in overrides if "=" in o] + list(configs)
        self._add(Job(f"fit {name}", "fit", (name, configs, max_steps, *overrides), str(ckpt)),
                  reads)  # fmt: skip
        return ckpt

    def probe(self, ckpt: Path, items: list[Path], out: Path, *options: str) -> Path:
        reads = [str(ckpt), *map(str, items), *map(str, options)]
        self._add(Job(f"probe {out}", "probe", (ckpt, items, out, *options), str(out)), reads)
        return out

    def report(self, command: str) -> None:
        job = Job("report", "report", (command,), "")
        job.deps = [k for k, j in self.jobs.items() if j.kind == "probe"]
        self.jobs[job.key] = job


@contextmanager
def recording(study):
    """Within: the study module's steps record jobs (yielded Recorder) instead of running."""
    rec = Recorder()
    names = ("dataset", "fit", "probe", "report")
    saved = {n: getattr(study, n) for n in names}
    for n in names:
        setattr(study, n, getattr(rec, n))
    try:
        yield rec
    finally:
        for n, f in saved.items():
            setattr(study, n, f)


def plan(study, run, keep_data: bool) -> list[Job]:
    """The jobs of `run()` (the study's main body), in the order the sequential run takes them;
    datasets nothing needs are dropped unless `keep_data`."""
    with recording(study) as rec:
        run()
    jobs = list(rec.jobs.values())
    if not keep_data:
        needed = {d for j in jobs for d in j.deps}
        jobs = [j for j in jobs if j.kind != "dataset" or j.key in needed]
    return jobs


def execute(study: str, kind: str, args: tuple, state: dict, root: str) -> str:
    """A job's body, in its own process: the step itself, from the repository root. Only the
    report reads the study's settings (its paths); the other steps get every path as an
    argument, so their jobs do not import the study (or torch: a job starts in a second)."""
    os.chdir(root)
    steps = {"dataset": runner.dataset, "fit": runner.fit, "probe": runner.probe}
    step = steps.get(kind)
    if step is None:
        module = importlib.import_module(study)
        for k, v in state.items():  # the study's settings (paths, sizes) as the launcher had them
            setattr(module, k, v)
        step = module.report
    try:
        out = step(*args)
    except SystemExit as e:  # runner.run stops a pipeline with SystemExit: a job fails instead
        raise RuntimeError(str(e)) from None
    return str(out)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The launcher's options, for a study's parser."""
    g = p.add_argument_group("launcher (experiments/launcher.py)")
    g.add_argument("--launcher", choices=("none", "local", "slurm"), default="none",
                   help="none: every step in this process, one after the other; local: "
                        "independent jobs, --jobs at a time on this machine; slurm: jobs on a "
                        "SLURM cluster (submitit)")  # fmt: skip
    g.add_argument("--jobs", type=int, default=2, help="local: jobs at a time")
    g.add_argument("--threads", type=int, default=0,
                   help="torch/OpenMP threads per step (0: torch's default; local: the cores / "
                        "--jobs)")  # fmt: skip
    g.add_argument("--slurm-partition", help="slurm: partition")
    g.add_argument("--slurm-time", type=int, default=240, help="slurm: minutes per job")
    g.add_argument("--slurm-cpus", type=int, default=4, help="slurm: CPUs per job")
    g.add_argument("--slurm-mem-gb", type=int, default=16, help="slurm: memory per job (GB)")
    g.add_argument("--slurm-param", action="append", default=[], metavar="KEY=VALUE",
                   help="slurm: any other SlurmExecutor parameter, e.g. account=me or "
                        "setup='module load python' (repeatable)")  # fmt: skip


def set_threads(threads: int) -> None:
    """Torch/OpenMP threads of every step started from here on (0: leave the default)."""
    if threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)


def main(study, run, args, keep_data: bool, state: tuple[str, ...] = ()) -> None:
    """A study's entry point: `run()` in this process (`--launcher none`) or as jobs; prints the
    wall time and exits with the jobs' code when one failed."""
    t0 = time.time()
    if args.launcher == "none":
        set_threads(args.threads)
        run()
        code = 0
    else:
        code = launch(study, run, args, keep_data=keep_data, state=state)
    print(f"finished in {(time.time() - t0) / 60:.1f} min")
    if code:
        raise SystemExit(code)


def launch(study, run, args, keep_data: bool, state: tuple[str, ...] = ()) -> int:
    """Run the study's `run()` as jobs (args: add_arguments' options); the exit code."""
    jobs = plan(study, run, keep_data)
    name = study.__name__ if study.__name__ != "__main__" else Path(study.__file__).stem
    folder = Path("runs/jobs") / name
    settings = {k: getattr(study, k) for k in state}
    # the job processes import this module and runner.py, and run from the repository root
    path = [str(EXPERIMENTS), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    os.environ["PYTHONPATH"] = os.pathsep.join(path)
    todo = [j for j in jobs if not j.finished()]
    print(f"[launcher] {name}: {len(jobs)} jobs, {len(jobs) - len(todo)} finished "
          f"(skipped), {len(todo)} to run", flush=True)  # fmt: skip
    call = lambda j: (execute, name, j.kind, j.args, settings, str(Path.cwd()))  # noqa: E731
    if args.launcher == "slurm":
        return submit_slurm(todo, args, folder, call)
    return run_local(todo, args, folder, call)


def run_local(todo: list[Job], args, folder: Path, call) -> int:
    """Start the jobs `args.jobs` at a time as their dependencies finish; wait for all."""
    import submitit

    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    set_threads(threads)
    pending = {j.key for j in todo}
    waiting, running, failed, blocked = list(todo), {}, {}, []
    t0 = time.time()
    while waiting or running:
        for job in list(waiting):
            if any(d in failed or d in blocked for d in job.deps):
                waiting.remove(job)
                blocked.append(job.key)
                print(f"[launcher] not started (needs a failed job): {job.key}", flush=True)
            elif len(running) < args.jobs and not any(d in pending for d in job.deps):
                waiting.remove(job)
                ex = submitit.LocalExecutor(folder=folder / job.name)
                ex.update_parameters(timeout_min=7 * 24 * 60)
                running[job.key] = (job, ex.submit(*call(job)), time.time())
                print(f"[launcher] started: {job.key}", flush=True)
        time.sleep(0.5)
        for key, (_, handle, start) in list(running.items()):
            if not handle.done():
                continue
            del running[key]
            pending.discard(key)
            try:
                handle.result()
                print(f"[launcher] finished ({time.time() - start:.0f} s): {key}", flush=True)
            except Exception as e:  # noqa: BLE001  (a failed job is reported, not raised)
                log = handle.paths.stderr
                failed[key] = log
                print(f"[launcher] FAILED: {key}: {cause(e)}\n           log: {log}", flush=True)
    print(f"[launcher] {len(todo) - len(failed) - len(blocked)} of {len(todo)} jobs finished in "
          f"{(time.time() - t0) / 60:.1f} min ({args.jobs} at a time, {threads} threads each)",
          flush=True)  # fmt: skip
    if failed or blocked:
        print(f"[launcher] {len(failed)} failed, {len(blocked)} not started; fix the cause and "
              "run the same command again: finished jobs are skipped", flush=True)  # fmt: skip
        return 1
    return 0


def cause(error: Exception) -> str:
    """The last line of a failed job's traceback (submitit puts it between dashed lines)."""
    parts = str(error).split("-" * 22)
    lines = [ln.strip() for ln in (parts[1] if len(parts) > 2 else str(error)).splitlines()]
    return next((ln for ln in reversed(lines) if ln), type(error).__name__)


def submit_slurm(todo: list[Job], args, folder: Path, call) -> int:
    """Submit every job with afterok dependencies on the unfinished jobs it needs; exit."""
    import submitit

    ids_file = folder / "slurm_jobs.json"
    known = json.loads(ids_file.read_text()) if ids_file.exists() else {}
    params = dict(time=args.slurm_time, cpus_per_task=args.slurm_cpus, mem=f"{args.slurm_mem_gb}G",
                  additional_parameters={"kill-on-invalid-dep": "yes"})  # fmt: skip
    if args.slurm_partition:
        params["partition"] = args.slurm_partition
    for kv in args.slurm_param:
        k, _, v = kv.partition("=")
        params[k] = [v] if k == "setup" else v
    ids: dict[str, str] = {}
    for job in todo:
        live = known.get(job.key) and slurm_state(folder / job.name, known[job.key]) in LIVE
        if live:
            ids[job.key] = known[job.key]
            print(f"[launcher] still queued or running, kept: {job.key} ({known[job.key]})")
            continue
        ex = submitit.SlurmExecutor(folder=folder / job.name)
        deps = [ids[d] for d in job.deps if d in ids]
        after = {"dependency": "afterok:" + ":".join(deps)} if deps else {}
        ex.update_parameters(job_name=job.name[:64], **params, **after)
        ids[job.key] = ex.submit(*call(job)).job_id
        print(f"[launcher] submitted {ids[job.key]}: {job.key}"
              + (f" (after {', '.join(deps)})" if deps else ""), flush=True)  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    ids_file.write_text(json.dumps({**known, **ids}, indent=1))
    print(f"[launcher] job ids in {ids_file}; `squeue --me` shows them; run the same command "
          "again after a failure: finished jobs are skipped")  # fmt: skip
    return 0


def slurm_state(folder: Path, job_id: str) -> str:
    """The SLURM state of a job submitted before ("UNKNOWN" if it cannot be read)."""
    import submitit

    try:
        return submitit.SlurmJob(folder=folder, job_id=job_id).state
    except Exception:  # noqa: BLE001  (no sacct here, or an unreadable answer)
        return "UNKNOWN"


if __name__ == "__main__":
    sys.exit("launcher.py is used by reproduce.py and law_study.py (--launcher local | slurm)")
