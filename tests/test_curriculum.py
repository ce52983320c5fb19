"""Curricula (DESIGN 5.4): the hobbesian-fraction data schedule of WorldDataModule.

The schedule's sampler (pwm/data/sampler.py, MixtureBatchSampler) must be a pure function of
(seed, batch index) like StepBatchSampler (exact resume, DDP split), draw each window from the
hobbesian group with probability p(step), refuse impossible schedules in one line, and leave
runs without a schedule byte for byte as they were.
"""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from faults import run_pwm

from data_gen.cli import main as data_main
from pwm.data import DatasetError, WindowDataset, WorldDataModule, open_dataset
from pwm.data.format import finalize, write_shard
from pwm.data.sampler import FractionSchedule, MixtureBatchSampler, StepBatchSampler

WINDOW = 8
CURRICULA = Path("experiments/curricula")
OPTIONS = {"hobbesian_fraction", "hobbesian_final", "ramp_start", "ramp_steps"}


@pytest.fixture(scope="session")
def polis_mix(tmp_path_factory):
    """16 Polis episodes of 16 frames, each hobbesian with probability 0.5 (6 of 16 at seed 0)."""
    out = tmp_path_factory.mktemp("data") / "polis-mix"
    argv = ["generate", "polis", "--out", str(out), "--episodes", "16", "--frames", "16"]
    argv += ["--image-size", "16", "--population", "mixture", "--hobbesian-fraction", "0.5"]
    assert data_main([*argv, "--seed", "0"]) == 0
    return out


def fake_polis(root: Path, hobbesian: list[int] | None, frames: int = 10) -> Path:
    """A minimal dataset: zero `state` and `actions`, and the given `hobbesian` flags (or none)."""
    episodes = len(hobbesian) if hobbesian is not None else 8
    arrays = {
        "state": np.zeros((episodes, frames, 4), np.float32),
        "actions": np.zeros((episodes, frames, 2), np.float32),
    }
    if hobbesian is not None:
        arrays["hobbesian"] = np.asarray(hobbesian, np.uint8)
    root.mkdir()
    write_shard(root, 0, arrays)
    assert finalize(root, 1, {"world": "polis"})
    return root


def datamodule(path, batch_size: int = 8, **schedule) -> WorldDataModule:
    return WorldDataModule(
        str(path), observation="state", window=WINDOW, batch_size=batch_size, **schedule
    )


def windows_per_episode(dm: WorldDataModule) -> int:
    return len(WindowDataset(dm.dataset.root, "state", dm.train_episodes, WINDOW).starts)


def hobbesian_flags(dm: WorldDataModule, batches: list[list[int]]) -> np.ndarray:
    """Per drawn window (batches flattened): does it come from a hobbesian episode?"""
    episodes = dm.train_episodes[np.asarray(batches).ravel() // windows_per_episode(dm)]
    return open_dataset(dm.dataset.root).array("hobbesian")[episodes].astype(bool)


def within_4_sigma(flags: np.ndarray, p: float) -> bool:
    return abs(flags.mean() - p) <= 4 * np.sqrt(p * (1 - p) / len(flags))


# ---- (1) a pure function of (seed, batch index) ---------------------------------------------
def test_batches_are_a_pure_function_of_seed_and_index(polis_mix):
    schedule = dict(hobbesian_fraction=0.3, hobbesian_final=0.8, ramp_start=3, ramp_steps=5)
    a = list(datamodule(polis_mix, **schedule).train_sampler(0, 40))
    b = datamodule(polis_mix, **schedule).train_sampler(0, 40)
    assert isinstance(b, MixtureBatchSampler) and list(b) == a
    assert [b.batch(i) for i in reversed(range(40))] == a[::-1]  # no hidden state
    resumed = datamodule(polis_mix, **schedule).train_sampler(13, 27)
    assert list(resumed) == a[13:] and len(resumed) == 40  # __len__ as StepBatchSampler's
    other_seed = WorldDataModule(
        str(polis_mix), observation="state", window=WINDOW, batch_size=8, split_seed=1, **schedule
    )
    assert list(other_seed.train_sampler(0, 40)) != a


# ---- (2) fraction 0 and 1 ---------------------------------------------------------------------
@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_fraction_0_and_1_draw_only_one_group(polis_mix, fraction):
    dm = datamodule(polis_mix, hobbesian_fraction=fraction)
    batches = list(dm.train_sampler(0, 50))
    assert (hobbesian_flags(dm, batches) == bool(fraction)).all()
    # the group is walked as StepBatchSampler walks all windows: its first epoch covers it
    episodes = dm.train_hobbesian if fraction else ~dm.train_hobbesian
    group = int(episodes.sum()) * windows_per_episode(dm)
    assert 0 < group < 50 * 8
    assert len(set(np.asarray(batches).ravel()[:group].tolist())) == group


# ---- (3) a mixture over many batches -------------------------------------------------------------
def test_fraction_half_gives_a_binomial_share(polis_mix):
    dm = datamodule(polis_mix, hobbesian_fraction=0.5)
    flags = hobbesian_flags(dm, list(dm.train_sampler(0, 300)))  # 2400 windows
    assert within_4_sigma(flags, 0.5), flags.mean()
    # the dataset's own share (train episodes) is not 0.5: the schedule, not the data, decides
    assert abs(dm.train_hobbesian.mean() - 0.5) > 0.05


# ---- (4) immunization --------------------------------------------------------------------------
def test_immunization_is_civilized_before_the_ramp_and_final_after(polis_mix):
    schedule = dict(hobbesian_fraction=0.0, hobbesian_final=0.5, ramp_start=10, ramp_steps=10)
    dm = datamodule(polis_mix, **schedule)
    accumulate = 2  # the schedule's clock is the optimizer step: batch index // accumulate
    sampler = dm.train_sampler(0, 340, accumulate=accumulate)
    batches = list(sampler)
    assert not hobbesian_flags(dm, batches[: 10 * accumulate]).any()  # steps 0..9
    assert hobbesian_flags(dm, batches[10 * accumulate : 20 * accumulate]).any()  # the ramp
    assert within_4_sigma(hobbesian_flags(dm, batches[20 * accumulate :]), 0.5)  # 2400 windows
    p = [dm.hobbesian_p(s) for s in (0, 9, 10, 15, 19, 20, 10_000)]
    assert p == [0.0, 0.0, 0.0, 0.25, 0.45, 0.5, 0.5]
    jump = FractionSchedule(0.0, 0.5, ramp_start=10, ramp_steps=0)
    assert (jump(9), jump(10)) == (0.0, 0.5)
    assert datamodule(polis_mix).hobbesian_p(5) is None


# ---- (5) DDP split -----------------------------------------------------------------------------
def test_ranks_split_each_global_batch(polis_mix):
    schedule = dict(hobbesian_fraction=0.5)
    single = datamodule(polis_mix, batch_size=8, **schedule).train_sampler(0, 60)
    dm = datamodule(polis_mix, batch_size=4, **schedule)
    ranks = [dm.train_sampler(0, 60, rank=r, world_size=2) for r in range(2)]
    groups = single.groups
    for i, (a, b) in enumerate(zip(*ranks, strict=True)):
        assert a + b == single.batch(i)  # rank 0's part, then rank 1's: the global batch
        # disjoint unless a group's permutation epoch ends inside the batch
        straddles = any((i * 8) // len(g) != (i * 8 + 7) // len(g) for g in groups)
        assert straddles or not set(a) & set(b), i


# ---- (6) bad input -----------------------------------------------------------------------------
CIVILIZED, HOBBESIAN, NO_ARRAY, MIX = "civilized", "hobbesian", "no-array", "mix"
BAD = [
    (MIX, dict(hobbesian_fraction=1.5), "data.hobbesian_fraction must be in [0, 1], got 1.5"),
    (MIX, dict(hobbesian_fraction=-0.1), "data.hobbesian_fraction must be in [0, 1]"),
    (MIX, dict(hobbesian_fraction=float("nan")), "data.hobbesian_fraction must be in [0, 1]"),
    (MIX, dict(hobbesian_fraction=0.0, hobbesian_final=2.0), "data.hobbesian_final must be in"),
    (MIX, dict(hobbesian_final=0.5), "data.hobbesian_final needs data.hobbesian_fraction"),
    (MIX, dict(ramp_start=5), "data.ramp_start needs data.hobbesian_fraction"),
    (MIX, dict(ramp_steps=5), "data.ramp_steps needs data.hobbesian_fraction"),
    (MIX, dict(hobbesian_fraction=0.0, ramp_start=5), "data.ramp_start ramps towards"),
    (
        MIX,
        dict(hobbesian_fraction=0.0, hobbesian_final=0.5, ramp_start=-1),
        "data.ramp_start must be >= 0, got -1",
    ),
    (
        MIX,
        dict(hobbesian_fraction=0.0, hobbesian_final=0.5, ramp_steps=-2),
        "data.ramp_steps must be >= 0, got -2",
    ),
    (NO_ARRAY, dict(hobbesian_fraction=0.0), "data.hobbesian_fraction needs a Polis dataset"),
    (CIVILIZED, dict(hobbesian_fraction=0.5), "data.hobbesian_fraction reaches 0.5"),
    (
        CIVILIZED,
        dict(hobbesian_fraction=0.0, hobbesian_final=0.1, ramp_start=5, ramp_steps=5),
        "data.hobbesian_final reaches 0.1 but the training split",
    ),
    (HOBBESIAN, dict(hobbesian_fraction=0.9), "no civilized episode"),
    (HOBBESIAN, dict(hobbesian_fraction=1.0, hobbesian_final=0.5), "data.hobbesian_final reaches"),
]


@pytest.fixture
def datasets(polis_mix, tmp_path) -> dict[str, Path]:
    return {
        MIX: polis_mix,
        CIVILIZED: fake_polis(tmp_path / "civ", [0] * 8),
        HOBBESIAN: fake_polis(tmp_path / "hob", [1] * 8),
        NO_ARRAY: fake_polis(tmp_path / "none", None),
    }


@pytest.mark.parametrize("kind, options, needle", BAD, ids=[str(c[1]) for c in BAD])
def test_bad_schedule_is_one_line_naming_the_option(kind, options, needle, datasets):
    with pytest.raises(ValueError) as e:  # DatasetError is a ValueError
        datamodule(datasets[kind], **options)
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)
    if kind != MIX:
        assert isinstance(e.value, DatasetError)


def test_single_group_schedules_on_single_population_data_are_fine(datasets):
    civ = datamodule(datasets[CIVILIZED], hobbesian_fraction=0.0)
    hob = datamodule(datasets[HOBBESIAN], hobbesian_fraction=1.0)
    assert len(list(civ.train_sampler(0, 3))) == len(list(hob.train_sampler(0, 3))) == 3


def test_bad_schedule_through_pwm_fit_exits_2(datasets, tmp_path, capsys, monkeypatch):
    argv = ["fit", "-c", "experiments/base.yaml", "-c", "experiments/debug.yaml"]
    argv += ["-c", str(CURRICULA / "mixed.yaml"), f"--data.path={datasets[NO_ARRAY]}"]
    argv += ["--data.observation=state", f"--trainer.default_root_dir={tmp_path}"]
    code, err = run_pwm(argv, capsys, monkeypatch)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("pwm fit: error: data.hobbesian_fraction needs a Polis dataset")


# ---- (7) no schedule: the old sampler, the old batches -------------------------------------------
def test_no_schedule_keeps_step_batch_sampler_and_its_batches(polis_mix):
    dm = datamodule(polis_mix)
    assert dm.schedule is None and dm.train_hobbesian is None
    sampler = dm.train_sampler(5, 20, rank=1, world_size=2, accumulate=3)
    assert type(sampler) is StepBatchSampler
    windows = len(WindowDataset(polis_mix, "state", dm.train_episodes, WINDOW))
    reference = StepBatchSampler(windows, 8, seed=0, start=5, num_batches=20, rank=1, world_size=2)
    assert list(sampler) == list(reference) and len(sampler) == len(reference)


# ---- the experiment files ----------------------------------------------------------------------
def test_curricula_files_are_data_schedule_diffs():
    base = yaml.safe_load(Path("experiments/base.yaml").read_text())
    files = {p.stem: yaml.safe_load(p.read_text()) for p in CURRICULA.glob("*.yaml")}
    assert sorted(files) == ["civilized", "hobbesian", "immunization", "immunization-6000", "mixed"]
    for cfg in files.values():
        assert set(cfg) == {"data"} and set(cfg["data"]) <= OPTIONS, cfg
    assert files["civilized"]["data"] == {"hobbesian_fraction": 0.0}
    assert files["hobbesian"]["data"] == {"hobbesian_fraction": 1.0}
    assert files["mixed"]["data"] == {"hobbesian_fraction": 0.5}
    steps = base["trainer"]["max_steps"]
    assert files["immunization"]["data"] == {
        "hobbesian_fraction": 0.0,
        "hobbesian_final": 0.5,
        "ramp_start": int(0.4 * steps),
        "ramp_steps": int(0.2 * steps),
    }
    # the same ramp for the study's max_steps (experiments/study.yaml)
    steps = yaml.safe_load(Path("experiments/study.yaml").read_text())["trainer"]["max_steps"]
    assert files["immunization-6000"]["data"] == {"ramp_start": int(0.4 * steps),
                                                  "ramp_steps": int(0.2 * steps)}  # fmt: skip


# ---- (8) end to end ----------------------------------------------------------------------------
def test_pwm_fit_with_an_immunization_schedule(polis_mix, tmp_path, capsys, monkeypatch):
    argv = ["fit", "-c", "experiments/base.yaml", "-c", "experiments/debug.yaml"]
    argv += ["-c", str(CURRICULA / "immunization.yaml"), f"--data.path={polis_mix}"]
    argv += ["--data.observation=state", "--data.ramp_start=1", "--data.ramp_steps=2"]
    argv += [
        "--trainer.max_steps=4",
        "--trainer.limit_val_batches=0",
        "--trainer.log_every_n_steps=1",
    ]
    argv += ["--trainer.log_every_n_steps=1", "--trainer.enable_progress_bar=false"]
    argv += [f"--trainer.default_root_dir={tmp_path}"]
    argv += [f"--trainer.logger.init_args.save_dir={tmp_path}"]
    code, err = run_pwm(argv, capsys, monkeypatch)
    assert code == 0, err[-5:]
    run = tmp_path / "debug" / "version_0"
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4
    saved = yaml.safe_load((run / "config.yaml").read_text())["data"]
    assert {k: saved[k] for k in OPTIONS} == {
        "hobbesian_fraction": 0.0,
        "hobbesian_final": 0.5,
        "ramp_start": 1,
        "ramp_steps": 2,
    }
    logged = {}  # step -> fraction, from the CSV log
    with open(run / "metrics.csv") as f:
        for row in csv.DictReader(f):
            if row.get("data/hobbesian_fraction"):
                logged[int(row["step"])] = float(row["data/hobbesian_fraction"])
    assert logged == {0: 0.0, 1: 0.0, 2: 0.25, 3: 0.5}
