"""Reliability guarantees (issue 7) that need a real process, a fault or a hostile file.

- a killed `pwm generate` / `pwm items` leaves no dataset, and re-running completes it with the
  bytes of an uninterrupted run;
- `pwm fit` on a corrupted dataset exits 2 with one line naming the shard (the real entry point);
- a NaN or Inf loss stops training with a clear message and keeps the last good checkpoint, and a
  non-finite gradient never reaches the weights;
- a checkpoint or a dataset crafted to run code when unpickled is refused, and the code never runs;
  no loader in pwm or data_gen is called in a way that could unpickle.

Kill-and-resume of training is tests/test_resume.py; the table of bad inputs is
tests/test_bad_inputs.py; DDP is tests/test_ddp.py.
"""

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from faults import CHECKPOINT_EVERY_4, poisoned_copy, run_pwm

from data_gen.cli import main as data_main
from pwm import provenance
from pwm.checkpoint import load_world_model
from pwm.data import DatasetError, open_dataset
from pwm.data.format import sha256_file, shard_name
from pwm.data.manifest import seal
from pwm.module import JEPAModule

PWM = [sys.executable, "-m", "pwm.cli"]
FIT = ["fit", "-c", "experiments/base.yaml", "-c", "experiments/debug.yaml"]


def tree(root) -> dict[str, bytes]:
    """Every file under root (hidden ones included), by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---- 2. interrupted generation ------------------------------------------------------------------
GENERATE = {  # each makes 4 or 5 shards of about a second each
    "generate": ["generate", "physics", "--episodes", "320", "--frames", "12"],
    "items": [
        *("items", "physics", "--items", "64", "--frames", "24"),
        *("--t-star-min", "8", "--t-star-max", "14"),
    ],
}


@pytest.mark.parametrize("command", list(GENERATE))
def test_killed_generation_is_not_a_dataset_and_rerun_completes_it(command, tmp_path):
    argv = [*GENERATE[command], "--image-size", "32", "--seed", "5"]
    cut, full = tmp_path / "cut", tmp_path / "full"
    proc = subprocess.Popen(
        [*PWM, *argv, "--out", str(cut)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while not (cut / shard_name(0) / "checksums.json").exists():  # one shard finished
        assert proc.poll() is None and time.time() < deadline, "generation ended before the kill"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "manifest.json").exists(), "killed too late: make the run longer"
    assert not (cut / shard_name(3) / "checksums.json").exists()
    with pytest.raises(DatasetError, match="no manifest.json"):
        open_dataset(cut)

    assert data_main([*argv, "--out", str(cut)]) == 0  # the same command resumes it
    assert data_main([*argv, "--out", str(full)]) == 0  # an uninterrupted run
    open_dataset(cut)
    a, b = tree(cut), tree(full)
    assert sorted(a) == sorted(b) and "manifest.json" in a  # no leftover temporaries
    # every file byte-identical but provenance.json, which records the killed job and the resume
    same = [k for k in a if k != "provenance.json"]
    assert all(a[k] == b[k] for k in same), [k for k in same if a[k] != b[k]]
    assert len(provenance.read(cut)) == 2 and len(provenance.read(full)) == 1


# ---- 2b. workers end with the command that started them ----------------------------------------
WORKER_DEATH_LIMIT_S = 5.0  # issue 32: no process of a killed command remains within 5 s


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (an exited process awaiting its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, their children, ...)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in out and alive(child):
                out.add(child)
                todo.append(child)
    return out


def kill_and_time_the_orphans(cmd: list[str], workers: int, ready=lambda: True, **kw) -> float:
    """Start `cmd`, wait until it has `workers` child processes (and `ready()`), kill -9 the
    command alone (not its process group) and return the seconds until none of them lives."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    deadline = time.time() + 180
    while len(children := descendants(proc.pid)) < workers or not ready():
        assert proc.poll() is None and time.time() < deadline, "the command ended too soon"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    start = time.time()
    while any(alive(pid) for pid in children) and time.time() - start < 30:
        time.sleep(0.01)
    left = [pid for pid in children if alive(pid)]
    for pid in left:  # do not leak them into the rest of the session
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} worker(s) outlived the killed command by 30 s"
    return time.time() - start


def test_killed_generation_leaves_no_worker(tmp_path):
    """`pwm generate --workers 2`: a kill -9 of the command ends its pool's workers."""
    out = tmp_path / "data"
    cmd = [*PWM, *GENERATE["generate"], "--image-size", "32", "--workers", "2", "--out", str(out)]
    took = kill_and_time_the_orphans(cmd, 2, lambda: (out / ".config.json").exists())
    assert took < WORKER_DEATH_LIMIT_S, took


def test_killed_fit_leaves_no_dataloader_worker(toy_dataset, tmp_path):
    """`pwm fit` with `data.num_workers 2`: a kill -9 ends the DataLoader's workers at once
    (without pwm/workers.py they would notice only at torch's next 5-second status check)."""
    cmd = [*PWM, *FIT, f"--data.path={toy_dataset}", "--data.num_workers=2",
           "--trainer.max_steps=100000", "--trainer.enable_progress_bar=false",
           f"--trainer.default_root_dir={tmp_path}",
           f"--trainer.logger.init_args.save_dir={tmp_path}"]  # fmt: skip
    took = kill_and_time_the_orphans(cmd, 2)
    assert took < 1.0, took


WATCHED_CHILD = """
import os, sys, time
import pwm.workers as w
if {fallback}:
    w.PR_SET_PDEATHSIG = 0x7FFFFFFF  # an option prctl refuses: the watchdog thread instead
parent = os.getpid()
if os.fork() == 0:
    w.die_with_parent(parent)
    time.sleep(120)
    os._exit(0)
time.sleep(120)
"""


@pytest.mark.parametrize("fallback", [False, True], ids=["prctl", "watchdog thread"])
def test_die_with_parent_either_way(fallback):
    took = kill_and_time_the_orphans(
        [sys.executable, "-c", WATCHED_CHILD.format(fallback=fallback)], 1
    )
    assert took < (1.5 if fallback else 0.5), took


def test_fit_replaces_a_finished_run_only_with_overwrite(
    toy_dataset, tmp_path, capsys, monkeypatch
):
    """A fresh `pwm fit` into a run directory that holds checkpoints is refused (before it
    writes anything); `--overwrite` replaces the run; `--ckpt_path last` of an empty run is
    refused instead of silently training from step 0."""
    run = [*FIT, f"--data.path={toy_dataset}", "--trainer.enable_progress_bar=false",
           *("--trainer.max_steps=1", "--trainer.val_check_interval=1"),
           "--trainer.limit_val_batches=1", f"--trainer.default_root_dir={tmp_path}",
           f"--trainer.logger.init_args.save_dir={tmp_path}",
           "--trainer.logger.init_args.version=0"]  # fmt: skip
    assert run_pwm(run, capsys, monkeypatch)[0] == 0
    done = tmp_path / "debug" / "version_0"
    (done / "mine.txt").write_text("a note in the run")
    before = tree(done)
    code, err = run_pwm(run, capsys, monkeypatch)
    assert code == 2 and len(err) == 1 and "already holds a run" in err[0], err
    assert tree(done) == before
    assert run_pwm([*run, "--overwrite"], capsys, monkeypatch)[0] == 0
    assert (done / "checkpoints" / "last.ckpt").exists() and not (done / "mine.txt").exists()
    fresh = [a.replace("version=0", "version=5") for a in run]
    code, err = run_pwm([*fresh, "--ckpt_path=last"], capsys, monkeypatch)
    assert code == 2 and "no last checkpoint" in err[-1] and "holds version_0" in err[-1], err
    assert not (tmp_path / "debug" / "version_5").exists()


# ---- 3. corruption, through the real entry point ------------------------------------------------
def test_fit_on_a_corrupted_dataset_exits_2_naming_the_shard(toy_dataset, tmp_path):
    bad = tmp_path / "toy"
    shutil.copytree(toy_dataset, bad)
    path = bad / shard_name(1) / "pixels.npy"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # one flipped bit
    path.write_bytes(bytes(data))
    cmd = [*PWM, *FIT, f"--data.path={bad}", f"--trainer.default_root_dir={tmp_path}"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"pwm fit: error: {bad}: shard shard-00001 file pixels.npy fails its checksum "
        "(truncated or altered); regenerate the dataset"
    ]
    assert not (tmp_path / "debug").exists()  # nothing trained


# ---- 4. numerical faults ------------------------------------------------------------------------
WINDOW, BATCH, MAX_STEPS = 8, 16, 12


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(
    value, toy_dataset, tmp_path, capsys, monkeypatch
):
    data = tmp_path / "poisoned"
    bad_step = poisoned_copy(toy_dataset, data, value, WINDOW, BATCH, MAX_STEPS, earliest=5)
    cfg = tmp_path / "ckpt.yaml"
    cfg.write_text(CHECKPOINT_EVERY_4)
    argv = [
        *(*FIT, "-c", str(cfg)),
        *(f"--data.path={data}", "--data.observation=state", f"--data.window={WINDOW}"),
        f"--data.batch_size={BATCH}",
        f"--trainer.max_steps={MAX_STEPS}",
        "--trainer.limit_val_batches=0",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ]
    code, err = run_pwm(argv, capsys, monkeypatch)
    assert code == 2
    assert err[-1].startswith(f"pwm fit: error: non-finite loss at step {bad_step} (")
    assert err[-1].endswith("training stopped, the last good checkpoint is kept")
    assert not any("Traceback" in line for line in err)
    ckpt = torch.load(tmp_path / "debug/version_0/checkpoints/last.ckpt", weights_only=True)
    assert ckpt["global_step"] == bad_step // 4 * 4 > 0  # the last save before the fault
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    load_world_model(tmp_path / "debug/version_0/checkpoints/last.ckpt")


def test_non_finite_loss_before_any_checkpoint_says_there_is_none(
    toy_dataset, tmp_path, capsys, monkeypatch
):
    """A NaN in the first steps, before anything was saved, must not claim a checkpoint."""
    data = tmp_path / "poisoned"
    bad_step = poisoned_copy(toy_dataset, data, np.nan, WINDOW, BATCH, 3, earliest=0)
    argv = [
        *FIT,
        *(f"--data.path={data}", "--data.observation=state", f"--data.window={WINDOW}"),
        *(f"--data.batch_size={BATCH}", "--trainer.max_steps=3", "--trainer.limit_val_batches=0"),
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ]
    code, err = run_pwm(argv, capsys, monkeypatch)
    assert code == 2 and err[-1].startswith(f"pwm fit: error: non-finite loss at step {bad_step}")
    assert err[-1].endswith("no checkpoint had been written yet (nothing to resume from)")
    assert not list(tmp_path.rglob("*.ckpt"))


def test_non_finite_gradient_is_stopped_before_the_optimizer_step():
    module = JEPAModule(observation="state", obs_size=4, window=3, history=2, embed_dim=8)
    for p in module.parameters():
        p.grad = torch.zeros_like(p)
    module.on_before_optimizer_step(optimizer=None)  # finite: passes
    next(module.parameters()).grad[0] = float("inf")
    with pytest.raises(FloatingPointError, match="non-finite gradient at step 0"):
        module.on_before_optimizer_step(optimizer=None)


# ---- 6. untrusted files -------------------------------------------------------------------------
class WritesMarker:
    """Unpickling this object opens (creates) the marker file: stands in for arbitrary code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def crafted_checkpoint(path, marker) -> None:
    torch.save({"state_dict": {}, "hyper_parameters": {"history": WritesMarker(marker)}}, path)
    torch.load(path, weights_only=False)  # proof that the file is hostile: it runs the code
    assert marker.exists()
    marker.unlink()


@pytest.mark.parametrize("command", ["validate", "fit-last", "probe"])
def test_crafted_checkpoint_is_refused_and_never_runs(
    command, toy_dataset, tmp_path, capsys, monkeypatch
):
    marker = tmp_path / "MARKER"
    ckpt_dir = tmp_path / "debug" / "version_0" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    ckpt = ckpt_dir / "last.ckpt"
    crafted_checkpoint(ckpt, marker)
    train = [
        *FIT[1:],
        f"--data.path={toy_dataset}",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--trainer.logger.init_args.version=0",
    ]
    argv = {
        "validate": ["validate", *train, f"--ckpt_path={ckpt}"],
        "fit-last": ["fit", *train, "--ckpt_path=last"],  # found and loaded by the Trainer
        "probe": ["probe", "--ckpt", str(ckpt), "--items", str(toy_dataset), "--out"],
    }[command]
    if command == "probe":
        argv.append(str(tmp_path / "probe"))
    code, err = run_pwm(argv, capsys, monkeypatch)
    assert code == 2
    assert err[-1].startswith(f"pwm {argv[0]}: error: ") and "ckpt" in err[-1]
    if command != "probe":  # the probe CLI words it its own way (pwm/probes/checkpoint.py)
        assert "refused: unpickling it would call" in err[-1]
    assert not any("Traceback" in line for line in err)
    if command != "fit-last":
        assert len(err) == 1, err
    assert not marker.exists()


def test_resuming_last_into_another_architecture_is_one_line(
    toy_dataset, tmp_path, capsys, monkeypatch
):
    """`--ckpt_path last` is found by the Trainer, so its fit is checked when it loads."""
    run = [
        *(*FIT, f"--data.path={toy_dataset}", "--trainer.enable_progress_bar=false"),
        *("--trainer.max_steps=1", "--trainer.limit_val_batches=0"),
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--trainer.logger.init_args.version=0",
    ]
    assert run_pwm(run, capsys, monkeypatch)[0] == 0
    code, err = run_pwm([*run, "--ckpt_path=last", "--data.window=12"], capsys, monkeypatch)
    assert code == 2 and not any("Traceback" in line for line in err)
    assert err[-1].startswith("pwm fit: error: checkpoint --ckpt_path last does not fit the model")
    assert "model.predictor.pos" in err[-1]


def test_array_of_pickled_objects_is_refused_and_never_unpickled(
    toy_dataset, tmp_path, capsys, monkeypatch
):
    marker, bad = tmp_path / "MARKER", tmp_path / "toy"
    shutil.copytree(toy_dataset, bad)
    path = bad / shard_name(0) / "actions.npy"
    episodes = np.load(path).shape[0]
    evil = np.empty(episodes, dtype=object)
    evil[:] = [WritesMarker(marker)] * episodes
    np.save(path, evil, allow_pickle=True)
    np.load(path, allow_pickle=True)  # proof that the file is hostile: it runs the code
    assert marker.exists()
    marker.unlink()
    # re-seal the checksums (the file's and the manifest's own) so only the pickle check can
    # catch it
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["shards"][0]["files"]["actions.npy"] = sha256_file(path)
    (bad / "manifest.json").write_text(json.dumps(seal(manifest)))
    code, err = run_pwm(
        [*FIT, f"--data.path={bad}", f"--trainer.default_root_dir={tmp_path}"], capsys, monkeypatch
    )
    assert code == 2 and len(err) == 1
    assert "shard shard-00000 array 'actions' holds Python objects (pickle); refused" in err[0]
    assert not marker.exists()


def test_no_loader_in_the_code_can_unpickle():
    """Every torch.load / np.load in pwm and data_gen passes weights_only=True /
    allow_pickle=False, and nothing calls pickle.load or yaml.load (the unsafe ones)."""
    want = {"torch": ("weights_only", True), "np": ("allow_pickle", False)}
    want["numpy"] = want["np"]
    for path in sorted(Path("pwm").rglob("*.py")) + sorted(Path("data_gen").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            call, where = (getattr(node.func.value, "id", None), node.func.attr), path
            assert call not in {("pickle", "load"), ("pickle", "loads"), ("yaml", "load")}, where
            if call[0] in want and call[1] == "load":
                flags = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
                key, value = want[call[0]]
                assert flags.get(key, "missing") is value, f"{path}:{node.lineno}"
