"""Every command fails on bad input with one actionable line and exit code 2 (DESIGN 6, issue 7).

One table: configs, command-line arguments, datasets, item sets and checkpoints, each row with
the text its one-line error must contain. The commands run in this process (`pwm.cli.main`, the
function the `pwm` script calls), which is what the script does minus the interpreter start;
tests/test_reliability.py runs one bad input through a real `pwm` process to show the two agree.
Each case must also fail before it makes anything: no run directory, no output.
"""

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from faults import run_pwm

from data_gen.cli import main as data_main
from pwm.cli import main as pwm_main
from pwm.data.format import sha256_file, shard_name

FIT = ["fit", "-c", "experiments/base.yaml", "-c", "experiments/debug.yaml"]


@dataclass
class Inputs:
    """Paths to the good and bad files the cases refer to."""

    root: Path
    toy: Path
    items: Path
    ckpt: Path

    def __getattr__(self, name: str) -> Path:  # a bad artefact made by `make_bad`
        return self.root / name


def edit_manifest(root: Path, edit) -> None:
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def make_bad(root: Path, toy: Path, items: Path, ckpt: Path) -> None:
    def copy(src: Path, name: str) -> Path:
        return Path(shutil.copytree(src, root / name))

    (copy(toy, "no_manifest") / "manifest.json").unlink()  # as a killed generation leaves it
    flip_byte(copy(toy, "flipped") / shard_name(1) / "pixels.npy")
    path = copy(toy, "truncated") / shard_name(0) / "state.npy"
    path.write_bytes(path.read_bytes()[:-64])
    (copy(toy, "bad_json") / "manifest.json").write_text('{"world": "toy", ')
    edit_manifest(copy(toy, "future"), lambda m: m.update(format_version=99))
    edit_manifest(copy(toy, "shape_lie"), lambda m: m["arrays"]["state"].update(shape=[24, 13]))
    edit_manifest(copy(toy, "no_state"), lambda m: m["arrays"].pop("state"))
    (copy(toy, "missing_file") / shard_name(1) / "actions.npy").unlink()
    objects = copy(toy, "objects")
    path = objects / shard_name(0) / "positions.npy"
    old = sha256_file(path)
    np.save(path, np.array([None] * 32, dtype=object), allow_pickle=True)
    text = (objects / "manifest.json").read_text().replace(old, sha256_file(path))
    (objects / "manifest.json").write_text(text)
    flip_byte(copy(items, "items_flipped") / shard_name(0) / "pixels.npy")
    with open(copy(items, "items_edited") / "items.json", "a") as f:
        f.write(" ")
    (root / "a_file").write_text("not a directory")
    (root / "not_empty").mkdir()
    (root / "not_empty" / "notes.txt").write_text("keep me")
    (root / "typo.yaml").write_text("model:\n  histroy: 4\n")
    (root / "bad.yaml").write_text("model: [history: 4\n")
    torch.save({"weights": torch.zeros(3)}, root / "not_pwm.ckpt")
    (root / "garbage.ckpt").write_bytes(bytes(range(256)) * 4)
    (root / "truncated.ckpt").write_bytes(ckpt.read_bytes()[:4096])


@pytest.fixture(scope="module")
def inputs(toy_dataset, tmp_path_factory) -> Inputs:
    root = tmp_path_factory.mktemp("bad")
    items = root / "items"
    argv = ["items", "physics", "--out", str(items), "--items", "4", "--frames", "12"]
    assert data_main([*argv, "--t-star-min", "4", "--t-star-max", "8", "--image-size", "32"]) == 0
    run = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["pwm"])
        pwm_main(
            [
                *FIT,
                f"--data.path={toy_dataset}",
                *("--trainer.max_steps=1", "--trainer.val_check_interval=1"),
                *("--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false"),
                f"--trainer.default_root_dir={run}",
                f"--trainer.logger.init_args.save_dir={run}",
            ]
        )
    ckpt = run / "debug" / "version_0" / "checkpoints" / "last.ckpt"
    make_bad(root, toy_dataset, items, ckpt)
    return Inputs(root, toy_dataset, items, ckpt)


def fit(i: Inputs, *extra: str, data: Path | None = None) -> list[str]:
    out = i.root / "runs"
    return [
        *FIT,
        f"--data.path={data or i.toy}",
        f"--trainer.default_root_dir={out}",
        f"--trainer.logger.init_args.save_dir={out}",
        *extra,
    ]


def validate(i: Inputs, ckpt, *extra: str) -> list[str]:
    return ["validate", *fit(i, *extra)[1:], f"--ckpt_path={ckpt}"]


def probe(ckpt, items) -> list[str]:
    return ["probe", "--ckpt", str(ckpt), "--items", str(items), "--out", "must-not-exist"]


def gen(out, *extra: str) -> list[str]:
    return ["generate", "physics", "--out", str(out), "--episodes", "2", "--frames", "4", *extra]


# (id, argv from the inputs, text the one error line must contain); every exit code is 2
CASES = [
    # configs
    ("history>=window", lambda i: fit(i, "--model.history=8"), "model.history must be in"),
    ("negative lambda", lambda i: fit(i, "--model.lam=-1"), "model.lam must be >= 0"),
    ("window 1", lambda i: fit(i, "--data.window=1"), "data.window must be >= 2"),
    ("window > episode", lambda i: fit(i, "--data.window=100"), "exceeds the episode length"),
    ("batch size 0", lambda i: fit(i, "--data.batch_size=0"), "data.batch_size must be >= 1"),
    ("val fraction 1.5", lambda i: fit(i, "--data.val_fraction=1.5"), "data.val_fraction"),
    ("patch size", lambda i: fit(i, "--model.encoder.patch_size=7"), "does not divide"),
    ("objects with pixels", lambda i: fit(i, "--model.objects=2"), "needs state observations"),
    (
        "objects vs state",
        lambda i: fit(i, "--data.observation=state", "--model.objects=5"),
        "model.objects 5 does not divide",
    ),
    ("unknown regulariser", lambda i: fit(i, "--model.regularizer=bogus"), "Got value: bogus"),
    ("unknown observation", lambda i: fit(i, "--data.observation=depth"), "Got value: depth"),
    ("non-integer steps", lambda i: fit(i, "--trainer.max_steps=abc"), "Got value: abc"),
    ("unknown option", lambda i: fit(i, "--data.pth=x"), "unrecognized arguments: --data.pth"),
    ("no devices", lambda i: fit(i, "--trainer.devices=0"), "trainer: `Trainer(devices='0')`"),
    ("unknown strategy", lambda i: fit(i, "--trainer.strategy=bogus"), "invalid strategy name"),
    ("missing config file", lambda i: fit(i, "-c", str(i.root / "absent.yaml")), "absent.yaml"),
    ("typo in a config", lambda i: fit(i, "-c", str(i.root / "typo.yaml")), "histroy"),
    ("config not YAML", lambda i: fit(i, "-c", str(i.root / "bad.yaml")), "bad.yaml"),
    # command-line arguments
    ("unknown command", lambda i: ["train"], "unknown command 'train'"),
    ("missing --out", lambda i: ["generate", "physics"], "--out"),
    ("unknown world", lambda i: ["generate", "mars", "--out", "x"], "invalid choice: 'mars'"),
    ("toy has no items", lambda i: ["items", "toy", "--out", "x"], "invalid choice: 'toy'"),
    ("zero episodes", lambda i: gen(i.g1, "--episodes", "0"), "--episodes must be >= 1"),
    ("shard >= shards", lambda i: gen(i.g2, "--shard", "2", "--num-shards", "2"), "--shard"),
    ("tiny image", lambda i: gen(i.g3, "--image-size", "8"), "--image-size must be >= 16"),
    ("no discs", lambda i: gen(i.g4, "--num-objects", "0"), "--num-objects must be in"),
    (
        "t* outside items",
        lambda i: ["items", "physics", "--out", str(i.g5), "--t-star-min", "0"],
        "--t-star-min",
    ),
    ("--out is a dataset", lambda i: gen(i.toy), "already holds a dataset; pass --overwrite"),
    ("--out is a file", lambda i: gen(i.a_file), "exists and is not a directory"),
    ("--out not empty", lambda i: gen(i.not_empty), "exists and is not empty"),
    ("weights_only false", lambda i: fit(i, "--weights_only=false"), "--weights_only false"),
    # datasets
    ("no dataset", lambda i: fit(i, data=i.nothing_here), "is not a directory"),
    ("generation killed", lambda i: fit(i, data=i.no_manifest), "no manifest.json"),
    ("flipped byte", lambda i: fit(i, data=i.flipped), "shard shard-00001 file pixels.npy fails"),
    ("truncated shard", lambda i: fit(i, data=i.truncated), "shard shard-00000 file state.npy"),
    ("manifest not JSON", lambda i: fit(i, data=i.bad_json), "is not valid JSON"),
    ("format version", lambda i: fit(i, data=i.future), "format version 99"),
    ("manifest lies", lambda i: fit(i, data=i.shape_lie), "but the manifest says"),
    ("pickled objects", lambda i: fit(i, data=i.objects), "holds Python objects (pickle)"),
    ("missing array file", lambda i: fit(i, data=i.missing_file), "is missing actions.npy"),
    (
        "no such observation",
        lambda i: fit(i, "--data.observation=state", data=i.no_state),
        "has no 'state'",
    ),
    # item sets
    ("dataset, not items", lambda i: probe(i.ckpt, i.toy), "not an item set"),
    ("items missing", lambda i: probe(i.ckpt, i.nothing_here), "is not a directory"),
    ("items corrupted", lambda i: probe(i.ckpt, i.items_flipped), "shard shard-00000 file"),
    ("items.json edited", lambda i: probe(i.ckpt, i.items_edited), "items.json is missing or"),
    ("other world's items", lambda i: probe(i.ckpt, i.items), "pass --cross-world"),
    # checkpoints
    ("checkpoint missing", lambda i: validate(i, i.no_such_ckpt), "not found"),
    ("checkpoint garbage", lambda i: validate(i, i.root / "garbage.ckpt"), "not a readable"),
    ("checkpoint cut", lambda i: validate(i, i.root / "truncated.ckpt"), "not a readable"),
    ("JSON as checkpoint", lambda i: validate(i, i.toy / "manifest.json"), "not a readable"),
    ("not pwm's", lambda i: validate(i, i.root / "not_pwm.ckpt"), "no hyper_parameters"),
    (
        "checkpoint vs window",
        lambda i: validate(i, i.ckpt, "--data.window=12"),
        "trained with window=8, but data.path",
    ),
    (
        "checkpoint vs observation",
        lambda i: validate(i, i.ckpt, "--data.observation=state"),
        "trained with observation=pixels, obs_size=32",
    ),
    ("probe: checkpoint missing", lambda i: probe(i.no_such_ckpt, i.items), "not found"),
    ("probe: garbage ckpt", lambda i: probe(i.root / "garbage.ckpt", i.items), "not a readable"),
]


@pytest.mark.parametrize("make_argv, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_code_2(make_argv, needle, inputs, capsys, monkeypatch):
    code, lines = run_pwm(make_argv(inputs), capsys, monkeypatch)
    assert code == 2, lines
    assert len(lines) == 1 and needle in lines[0], lines
    assert lines[0].startswith("pwm")  # `pwm: error: ...` or `pwm generate: error: ...`
    assert not (inputs.root / "runs").exists()  # failed before making anything
    assert not Path("must-not-exist").exists()
    assert not any((inputs.root / f"g{k}").exists() for k in range(1, 6))


def test_the_table_covers_every_kind_of_input():
    assert len(CASES) >= 20 and len({c[0] for c in CASES}) == len(CASES)
