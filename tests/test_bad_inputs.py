"""Every command fails on bad input with one actionable line and exit code 2 (DESIGN 6, issues 7
and 32).

One table: configs (ranges and consistency: the config's world against the dataset's, a dataset
against an item set), command-line arguments, datasets and their manifests, item sets and their
metadata, checkpoints, run and output directories that hold a finished result, probe and report
options. Each row gives the text its one-line error must contain. The commands run in this
process (`pwm.cli.main`, the function the `pwm` script calls), which is what the script does
minus the interpreter start; tests/test_reliability.py runs bad inputs through a real `pwm`
process to show the two agree. Every case must:

- exit with code 2 and print exactly one line, `pwm COMMAND: error: ...` naming its command
  (`pwm: error:` only when there is no command to name), with no traceback;
- write nothing: every file and directory under the inputs (the finished run, probe and report
  included) keeps its size and modification time, nothing new appears there or in the current
  directory.

tests/test_fuzz.py adds random structural edits of a manifest and of item metadata.
"""

import json
import os
import shutil
import subprocess
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
from pwm.data.manifest import seal

FIT = ["fit", "-c", "experiments/base.yaml", "-c", "experiments/debug.yaml"]
CWD_OUTPUTS = ("runs", "lightning_logs", "wandb", "must-not-exist")


def cwd_outputs() -> dict[str, list[str] | None]:
    """What the default output folders in the working directory hold (their entries), so that a
    refused command is seen to add nothing there even in a checkout that already has runs."""
    return {p: sorted(x.name for x in Path(p).iterdir()) if Path(p).is_dir() else None
            for p in CWD_OUTPUTS}  # fmt: skip


@dataclass
class Inputs:
    """Paths to the good and bad files the cases refer to."""

    root: Path
    toy: Path
    items: Path
    ckpt: Path

    def __getattr__(self, name: str) -> Path:  # a bad artefact made by `make_bad`
        return self.root / name


def edit_manifest(root: Path, edit, reseal: bool = True) -> None:
    """Edit a manifest; re-sealed (its own checksum recomputed) unless `reseal` is False, so
    that the check meant to catch the edit is the one that does."""
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(seal(manifest) if reseal else manifest))


def edit_items(root: Path, edit=None, text: str | None = None) -> None:
    """Edit items.json (or replace its text), then re-checksum it in a re-sealed manifest, so
    only the metadata check can refuse it."""
    path = root / "items.json"
    if text is None:
        meta = json.loads(path.read_text())
        edit(meta)
        text = json.dumps(meta)
    path.write_text(text)
    edit_manifest(root, lambda m: m["extra_files"].update({"items.json": sha256_file(path)}))


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


class RunsShell:
    """Unpickling this object would run a shell command (it never is: weights_only)."""

    def __reduce__(self):
        return (os.system, ("true",))


# manifest edits: (name, edit); every one re-sealed, so the schema or confinement refuses it
def _drop_shard(m):
    m["shards"].pop()


MANIFEST_EDITS = {
    "m_shards_oops": lambda m: m.update(shards="oops"),
    "m_shard_no_files": lambda m: m["shards"][0].pop("files"),
    "m_episodes_changed": lambda m: m.update(num_episodes=m["num_episodes"] + 1),
    "m_shard_dropped": _drop_shard,
    "m_shard_escapes": lambda m: m["shards"][0].update(name="../../other/shard-00000"),
    "m_array_escapes": lambda m: m["arrays"].update({"../x": m["arrays"]["state"]}),
    "m_extra_escapes": lambda m: m.update(extra_files={"../../etc/passwd": "0" * 64}),
    "m_extra_reserved": lambda m: m.update(extra_files={"manifest.json": "0" * 64}),
    "m_not_object": lambda m: (m.clear(), m.update(x=1)),
    "m_no_world": lambda m: m.pop("world"),
    "m_world_int": lambda m: m.update(world=5),
    "m_kind_bogus": lambda m: m.update(kind="bogus"),
    "m_version_true": lambda m: m.update(format_version=True),
    "m_no_arrays": lambda m: m.update(arrays={}),
    "m_shape_text": lambda m: m["arrays"]["state"].update(shape="x"),
    "m_shape_negative": lambda m: m["arrays"]["state"].update(shape=[24, -12]),
    "m_dtype_object": lambda m: m["arrays"]["state"].update(dtype="object"),
    "m_dtype_bogus": lambda m: m["arrays"]["state"].update(dtype="float99"),
    "m_episodes_zero": lambda m: m.update(num_episodes=0),
    "m_episodes_text": lambda m: m.update(num_episodes="40"),
    "m_num_shards": lambda m: m.update(num_shards=7),
    "m_shard_episodes_0": lambda m: m["shards"][0].update(episodes=0),
    "m_shard_index": lambda m: m["shards"][1].update(index=0),
    "m_digest_short": lambda m: m["shards"][0]["files"].update({"state.npy": "abc"}),
    "m_num_frames": lambda m: m.update(num_frames=1),
    "m_extra_not_map": lambda m: m.update(extra_files="x"),
    "m_file_missing": lambda m: m["shards"][0]["files"].pop("state.npy"),
    "m_config_int": lambda m: m.update(config=3),
    "m_kind_items": lambda m: m.update(kind="items"),
    "m_kind_consequence": lambda m: m.update(kind="consequence"),
}


def _swap_conditions(m):
    """Group 0's teleport and vanish items trade conditions: each still names a condition of its
    label, once per group, but no longer what its episode shows."""
    a, b = (next(i for i in m["items"] if i["group_id"] == 0 and i["condition"] == c)
            for c in ("teleport", "vanish"))  # fmt: skip
    a["condition"], b["condition"] = b["condition"], a["condition"]


# item metadata edits: (name, edit of items.json); re-checksummed and re-sealed
ITEM_EDITS = {
    "i_list": lambda m: (m.clear(), m.update(x=[])),
    "i_no_items": lambda m: m.pop("items"),
    "i_world": lambda m: m.update(world="polis"),
    "i_no_conditions": lambda m: m.update(conditions={}),
    "i_comparisons_map": lambda m: m.update(comparisons={}),
    "i_comparison_no_name": lambda m: m["comparisons"][0].pop("name"),
    "i_comparison_unknown": lambda m: m["comparisons"][0].update(implausible=["levitate"]),
    "i_comparison_twice": lambda m: m["comparisons"].append(dict(m["comparisons"][0])),
    "i_comparison_empty": lambda m: m["comparisons"][0].update(plausible=[]),
    "i_comparison_K": lambda m: m["comparisons"][0].update(K=0),
    "i_items_empty": lambda m: m.update(items=[]),
    "i_item_not_map": lambda m: m["items"].__setitem__(0, 7),
    "i_item_no_t_star": lambda m: m["items"][0].pop("t_star"),
    "i_item_episode_999": lambda m: m["items"][0].update(episode=999),
    "i_item_episode_text": lambda m: m["items"][0].update(episode="3"),
    "i_item_t_star_late": lambda m: m["items"][0].update(t_star=1000),
    "i_item_t_star_neg": lambda m: m["items"][0].update(t_star=-1),
    "i_item_id_twice": lambda m: m["items"][1].update(item_id=m["items"][0]["item_id"]),
    "i_item_condition": lambda m: m["items"][0].update(condition="levitate"),
    "i_item_label": lambda m: m["items"][0].update(label="maybe"),
    "i_item_label_vs_condition": lambda m: m["items"][0].update(label="implausible"),
    "i_item_surprisal": lambda m: m["items"][0].update(ideal_surprisal="x"),
    "i_group_twice": lambda m: m["items"][1].update(
        {k: m["items"][0][k] for k in ("condition", "label")}
    ),  # fmt: skip
    "i_round_len": lambda m: m.update(round_len=0),
    "i_item_surprisal_nan": lambda m: m["items"][1].update(ideal_surprisal=float("nan")),
    "i_episode_twice": lambda m: m["items"][1].update(episode=m["items"][0]["episode"]),
    "i_t_star_vs_record": lambda m: m["items"][0].update(t_star=m["items"][0]["t_star"] + 1),
    "i_conditions_swapped": _swap_conditions,
    "i_no_vanish": lambda m: m.update(items=[i for i in m["items"] if i["condition"] != "vanish"]),
}


def make_bad(root: Path, toy: Path, items: Path, ckpt: Path) -> None:
    def copy(src: Path, name: str) -> Path:
        return Path(shutil.copytree(src, root / name))

    (copy(toy, "no_manifest") / "manifest.json").unlink()  # as a killed generation leaves it
    flip_byte(copy(toy, "flipped") / shard_name(1) / "pixels.npy")
    path = copy(toy, "truncated") / shard_name(0) / "state.npy"
    path.write_bytes(path.read_bytes()[:-64])
    (copy(toy, "bad_json") / "manifest.json").write_text('{"world": "toy", ')
    (copy(toy, "not_utf8") / "manifest.json").write_bytes(bytes(range(128, 256)))
    (copy(toy, "deep_json") / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    edit_manifest(copy(toy, "future"), lambda m: m.update(format_version=99))
    edit_manifest(copy(toy, "shape_lie"), lambda m: m["arrays"]["state"].update(shape=[24, 13]))

    def no_state(m):
        m["arrays"].pop("state")
        for shard in m["shards"]:
            shard["files"].pop("state.npy")

    edit_manifest(copy(toy, "no_state"), no_state)
    edit_manifest(copy(toy, "unsealed"), lambda m: m.update(seed=1), reseal=False)
    for name, edit in MANIFEST_EDITS.items():
        edit_manifest(copy(toy, name), edit)
    (copy(toy, "missing_file") / shard_name(1) / "actions.npy").unlink()
    objects = copy(toy, "objects")
    path = objects / shard_name(0) / "positions.npy"
    np.save(path, np.array([None] * 32, dtype=object), allow_pickle=True)
    digest = {"positions.npy": sha256_file(path)}
    edit_manifest(objects, lambda m: m["shards"][0]["files"].update(digest))
    outside = root / "outside"
    outside.mkdir()
    shutil.copytree(toy / shard_name(0), outside / shard_name(0))
    shutil.copy(toy / shard_name(0) / "state.npy", outside / "state.npy")
    linked = copy(toy, "shard_symlink")
    shutil.rmtree(linked / shard_name(0))
    (linked / shard_name(0)).symlink_to(outside / shard_name(0))
    linked = copy(toy, "file_symlink")
    (linked / shard_name(0) / "state.npy").unlink()
    (linked / shard_name(0) / "state.npy").symlink_to(outside / "state.npy")
    manifest_dir = copy(toy, "manifest_dir")
    (manifest_dir / "manifest.json").unlink()
    (manifest_dir / "manifest.json").mkdir()
    # item sets
    flip_byte(copy(items, "items_flipped") / shard_name(0) / "pixels.npy")
    with open(copy(items, "items_edited") / "items.json", "a") as f:
        f.write(" ")
    for name, edit in ITEM_EDITS.items():
        edit_items(copy(items, name), edit)
    edit_items(copy(items, "i_not_json"), text="{items: ")
    (copy(items, "i_missing") / "items.json").unlink()
    edit_manifest(copy(items, "i_unsealed"), lambda m: m.update(seed=3), reseal=False)
    edit_manifest(copy(items, "i_consequence"), lambda m: m.update(kind="consequence"))
    # files and directories
    (root / "a_file").write_text("not a directory")
    (root / "not_empty").mkdir()
    (root / "not_empty" / "notes.txt").write_text("keep me")
    (root / "typo.yaml").write_text("model:\n  histroy: 4\n")
    (root / "bad.yaml").write_text("model: [history: 4\n")
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "unknown_section.yaml").write_text("modle:\n  history: 4\n")
    # checkpoints
    torch.save({"weights": torch.zeros(3)}, root / "not_pwm.ckpt")
    (root / "garbage.ckpt").write_bytes(bytes(range(256)) * 4)
    (root / "truncated.ckpt").write_bytes(ckpt.read_bytes()[:4096])
    torch.save(
        {"state_dict": {}, "hyper_parameters": {"history": RunsShell()}}, root / "shell.ckpt"
    )
    torch.save({"state_dict": {}, "hyper_parameters": {"bogus": 1}}, root / "unknown_hp.ckpt")
    state = torch.load(ckpt, weights_only=True)
    state["hyper_parameters"]["world"] = "polis"
    torch.save(state, root / "polis.ckpt")
    state["hyper_parameters"]["world"] = "toy"
    state["hyper_parameters"]["embed_dim"] = 0
    torch.save(state, root / "zero_width.ckpt")
    shutil.copy(ckpt, root / "copy.ckpt")
    # finished results that must not be replaced
    (root / "probe_done").mkdir()
    (root / "probe_done" / "metrics.json").write_text('{"model": {}}')
    (root / "probe_other").mkdir()
    (root / "probe_other" / "notes.txt").write_text("keep me")
    (root / "REPORT.md").write_text("an earlier report")
    # report inputs
    for name, text in (("r_not_json", "{"), ("r_list", "[]"), ("r_no_items", '{"model": {}}')):
        (root / name).mkdir()
        (root / name / "metrics.json").write_text(text)
    (root / "probe_cfg").mkdir()
    voe = Path("experiments/voe.yaml").read_text()
    for name, old, new in (
        ("window", "window: 4 ", "window: -1 "),
        ("context", "context: null", "context: 0"),
        ("context_big", "context: null", "context: 100"),
        ("aggregator", "aggregators: [max, mean]", "aggregators: [median]"),
        ("unknown", "seed: 0 ", "sede: 0 "),
    ):
        assert old in voe, old
        (root / "probe_cfg" / f"{name}.yaml").write_text(voe.replace(old, new))
    (root / "probe_cfg" / "not_yaml.yaml").write_text("window: [4\n")


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


def into_run(i: Inputs, *extra: str) -> list[str]:
    """Options that log into the finished fixture run (root/run/debug/version_0)."""
    return [
        f"--trainer.default_root_dir={i.run}",
        f"--trainer.logger.init_args.save_dir={i.run}",
        "--trainer.logger.init_args.version=0",
        *extra,
    ]


def evaluate(command: str, i: Inputs, ckpt, *extra: str) -> list[str]:
    return [command, *fit(i, *extra)[1:], f"--ckpt_path={ckpt}"]


def validate(i: Inputs, ckpt, *extra: str) -> list[str]:
    return evaluate("validate", i, ckpt, *extra)


def probe(ckpt, items, *extra: str, out: str = "must-not-exist") -> list[str]:
    return ["probe", "--ckpt", str(ckpt), "--items", str(items), "--out", str(out), *extra]


def gen(out, *extra: str, world: str = "physics") -> list[str]:
    return ["generate", world, "--out", str(out), "--episodes", "2", "--frames", "4", *extra]


def items_cmd(out, world: str, *extra: str) -> list[str]:
    return ["items", world, "--out", str(out), "--items", "1", *extra]


def manifest_case(name: str, needle: str):
    return (f"manifest: {name}", lambda i: fit(i, data=i.root / name), needle)


def items_case(name: str, needle: str):
    return (f"items.json: {name}", lambda i: probe(i.ckpt, i.root / name), needle)


# (id, argv from the inputs, text the one error line must contain); every exit code is 2
CASES = [
    # ---- configs: model ranges -------------------------------------------------------------
    ("history>=window", lambda i: fit(i, "--model.history=8"), "model.history must be in"),
    ("history 0", lambda i: fit(i, "--model.history=0"), "model.history must be in"),
    ("negative lambda", lambda i: fit(i, "--model.lam=-1"), "model.lam must be >= 0"),
    ("lambda inf", lambda i: fit(i, "--model.lam=inf"), "model.lam"),
    ("embed_dim 0", lambda i: fit(i, "--model.embed_dim=0"), "model.embed_dim must be"),
    ("embed_dim -4", lambda i: fit(i, "--model.embed_dim=-4"), "model.embed_dim must be"),
    ("projector 0", lambda i: fit(i, "--model.projector_hidden=0"), "model.projector_hidden"),
    ("encoder width 0", lambda i: fit(i, "--model.encoder.width=0"), "model.encoder.width"),
    ("encoder depth 0", lambda i: fit(i, "--model.encoder.depth=0"), "model.encoder.depth"),
    ("encoder depth -1", lambda i: fit(i, "--model.encoder.depth=-1"), "model.encoder.depth"),
    ("encoder heads 0", lambda i: fit(i, "--model.encoder.heads=0"), "model.encoder.heads"),
    ("heads vs width", lambda i: fit(i, "--model.encoder.heads=3"), "does not divide model.enc"),
    ("encoder mlp -1", lambda i: fit(i, "--model.encoder.mlp_dim=-1"), "model.encoder.mlp_dim"),
    ("patch size 0", lambda i: fit(i, "--model.encoder.patch_size=0"), "patch_size must be"),
    ("patch size", lambda i: fit(i, "--model.encoder.patch_size=7"), "does not divide"),
    ("predictor width 0", lambda i: fit(i, "--model.predictor.width=0"), "predictor.width"),
    ("predictor depth 0", lambda i: fit(i, "--model.predictor.depth=0"), "predictor.depth"),
    ("predictor depth -2", lambda i: fit(i, "--model.predictor.depth=-2"), "predictor.depth"),
    ("predictor heads 0", lambda i: fit(i, "--model.predictor.heads=0"), "predictor.heads"),
    ("head_dim 0", lambda i: fit(i, "--model.predictor.head_dim=0"), "predictor.head_dim"),
    ("predictor mlp 0", lambda i: fit(i, "--model.predictor.mlp_dim=0"), "predictor.mlp_dim"),
    ("dropout 1", lambda i: fit(i, "--model.predictor.dropout=1"), "dropout must be in [0, 1)"),
    ("dropout < 0", lambda i: fit(i, "--model.predictor.dropout=-0.1"), "dropout must be in"),
    ("directions 0", lambda i: fit(i, "--model.num_directions=0"), "model.num_directions"),
    ("EMA momentum 2", lambda i: fit(i, "--model.ema_momentum=2"), "model.ema_momentum"),
    (
        "EMA momentum < 0",
        lambda i: fit(i, "--model.target=ema", "--model.ema_momentum=-0.5"),
        "model.ema_momentum",
    ),
    ("negative lr", lambda i: fit(i, "--model.optim.lr=-1"), "model.optim.lr must be"),
    ("lr text", lambda i: fit(i, "--model.optim.lr=fast"), "Got value: fast"),
    ("lr inf", lambda i: fit(i, "--model.optim.lr=inf"), "model.optim.lr"),
    ("weight decay < 0", lambda i: fit(i, "--model.optim.weight_decay=-0.1"), "weight_decay"),
    ("warmup < 0", lambda i: fit(i, "--model.optim.warmup_steps=-1"), "warmup_steps must be"),
    ("min_lr_ratio 1.5", lambda i: fit(i, "--model.optim.min_lr_ratio=1.5"), "min_lr_ratio"),
    ("min_lr_ratio < 0", lambda i: fit(i, "--model.optim.min_lr_ratio=-0.1"), "min_lr_ratio"),
    ("objects 0", lambda i: fit(i, "--model.objects=0"), "model.objects must be >= 1"),
    ("objects with pixels", lambda i: fit(i, "--model.objects=2"), "needs state observations"),
    ("unknown tokens", lambda i: fit(i, "--model.encoder.tokens=slots"), "tokens must be one of"),
    (
        "patch tokens vs objects",
        lambda i: fit(i, "--model.encoder.tokens=patches"),
        "tokens per frame",
    ),
    (
        "patch tokens on state",
        lambda i: fit(i, "--data.observation=state", "--model.encoder.tokens=patches"),
        "tokens patches needs pixel observations",
    ),
    (
        "objects vs state",
        lambda i: fit(i, "--data.observation=state", "--model.objects=5"),
        "model.objects 5 does not divide",
    ),
    (
        "objects vs embed_dim",
        lambda i: fit(i, "--data.observation=state", "--model.objects=2", "--model.embed_dim=33"),
        "does not divide model.embed_dim 33",
    ),
    ("oracle on pixels", lambda i: fit(i, "--model.target=oracle"), "needs state observations"),
    (
        "crops without positions",
        lambda i: fit(i, "--data.observation=crops"),
        "has no 'crops' array: object crops need the objects' positions",
    ),
    ("unknown regulariser", lambda i: fit(i, "--model.regularizer=bogus"), "Got value: bogus"),
    ("unknown target", lambda i: fit(i, "--model.target=bogus"), "Got value: bogus"),
    ("unknown prediction", lambda i: fit(i, "--model.prediction=bogus"), "Got value: bogus"),
    ("unknown projector", lambda i: fit(i, "--model.projector=bogus"), "Got value: bogus"),
    ("unknown model key", lambda i: fit(i, "--model.encoder.widht=3"), "widht"),
    # ---- configs: data ranges and consistency -------------------------------------------------
    ("window 1", lambda i: fit(i, "--data.window=1"), "data.window must be >= 2"),
    ("window > episode", lambda i: fit(i, "--data.window=100"), "exceeds the episode length"),
    ("batch size 0", lambda i: fit(i, "--data.batch_size=0"), "data.batch_size must be >= 1"),
    ("batch > dataset", lambda i: fit(i, "--data.batch_size=100000"), "training windows"),
    ("val fraction 1.5", lambda i: fit(i, "--data.val_fraction=1.5"), "data.val_fraction"),
    ("val fraction < 0", lambda i: fit(i, "--data.val_fraction=-0.1"), "data.val_fraction"),
    ("stride 0", lambda i: fit(i, "--data.stride=0"), "data.stride must be >= 1"),
    ("frame_skip 0", lambda i: fit(i, "--data.frame_skip=0"), "data.frame_skip must be >= 1"),
    ("offset < 0", lambda i: fit(i, "--data.offset=-1"), "data.offset must be >= 0"),
    ("offset too late", lambda i: fit(i, "--data.offset=20"), "exceeds the episode length"),
    ("workers < 0", lambda i: fit(i, "--data.num_workers=-1"), "data.num_workers must be"),
    ("split seed < 0", lambda i: fit(i, "--data.split_seed=-1"), "data.split_seed must be >= 0"),
    (
        "curriculum on toy",
        lambda i: fit(i, "--data.hobbesian_fraction=0.5"),
        "needs a Polis dataset",
    ),
    ("fraction 1.5", lambda i: fit(i, "--data.hobbesian_fraction=1.5"), "must be in [0, 1]"),
    ("final alone", lambda i: fit(i, "--data.hobbesian_final=0.5"), "needs data.hobbesian_frac"),
    ("ramp < 0", lambda i: fit(i, "--data.ramp_steps=-1"), "data.ramp_steps must be >= 0"),
    ("event weights on toy", lambda i: fit(i, "--data.event_weight=2"), "needs a Polis dataset"),
    ("event weight < 0", lambda i: fit(i, "--data.event_weight=-1"), "data.event_weight must"),
    ("event weight nan", lambda i: fit(i, "--data.event_weight=nan"), "data.event_weight"),
    (
        "feature weights without the oracle",
        lambda i: fit(i, "--model.feature_weights=[1]"),
        "model.feature_weights needs model.target oracle",
    ),
    ("event steps 0", lambda i: fit(i, "--data.event_steps=0"), "data.event_steps must be >= 1"),
    ("world vs dataset", lambda i: fit(i, "--data.world=physics"), "is a 'toy' dataset"),
    (
        "physical config, other data",
        lambda i: fit(i, "-c", "experiments/physical.yaml", f"--data.path={i.toy}"),
        "the config is for world 'physics'",
    ),
    (
        "political config, other data",
        lambda i: fit(i, "-c", "experiments/political.yaml", f"--data.path={i.toy}"),
        "the config is for world 'polis'",
    ),
    ("items as training data", lambda i: fit(i, data=i.items), "is an item set"),
    ("unknown observation", lambda i: fit(i, "--data.observation=depth"), "Got value: depth"),
    (
        "no such observation",
        lambda i: fit(i, "--data.observation=state", data=i.no_state),
        "has no 'state'",
    ),
    # ---- configs: trainer ---------------------------------------------------------------------
    ("max_steps 0", lambda i: fit(i, "--trainer.max_steps=0"), "trainer.max_steps must be"),
    ("max_steps -5", lambda i: fit(i, "--trainer.max_steps=-5"), "trainer.max_steps must be"),
    ("accumulate 0", lambda i: fit(i, "--trainer.accumulate_grad_batches=0"), "accumulate"),
    ("accumulate -1", lambda i: fit(i, "--trainer.accumulate_grad_batches=-1"), "accumulate"),
    ("val interval 0", lambda i: fit(i, "--trainer.val_check_interval=0"), "val_check_interv"),
    ("val interval 1.5", lambda i: fit(i, "--trainer.val_check_interval=1.5"), "as a fraction"),
    ("log every 0", lambda i: fit(i, "--trainer.log_every_n_steps=0"), "log_every_n_steps"),
    ("clip < 0", lambda i: fit(i, "--trainer.gradient_clip_val=-1"), "gradient_clip_val"),
    ("non-integer steps", lambda i: fit(i, "--trainer.max_steps=abc"), "Got value: abc"),
    ("unknown option", lambda i: fit(i, "--data.pth=x"), "unrecognized arguments: --data.pth"),
    ("no devices", lambda i: fit(i, "--trainer.devices=0"), "trainer: `Trainer(devices='0')`"),
    ("unknown strategy", lambda i: fit(i, "--trainer.strategy=bogus"), "invalid strategy name"),
    ("seed < 0", lambda i: fit(i, "--seed_everything=-1"), "seed_everything must be in"),
    ("seed text", lambda i: fit(i, "--seed_everything=abc"), "abc"),
    # ---- config files -------------------------------------------------------------------------
    ("missing config file", lambda i: fit(i, "-c", str(i.root / "absent.yaml")), "absent.yaml"),
    ("typo in a config", lambda i: fit(i, "-c", str(i.root / "typo.yaml")), "histroy"),
    ("config not YAML", lambda i: fit(i, "-c", str(i.root / "bad.yaml")), "bad.yaml"),
    ("config a list", lambda i: fit(i, "-c", str(i.root / "list.yaml")), "list.yaml must be a"),
    ("unknown section", lambda i: fit(i, "-c", str(i.root / "unknown_section.yaml")), "modle"),
    # ---- runs: resume, evaluation, finished results ---------------------------------------------
    ("last, no run", lambda i: fit(i, "--ckpt_path=last"), "no last checkpoint in"),
    (
        "last, no such version",
        lambda i: fit(i, "--ckpt_path=last", "--trainer.logger.init_args.version=7"),
        "version_7/checkpoints",
    ),
    ("fit over a finished run", lambda i: fit(i, *into_run(i)), "already holds a run; resume"),
    ("validate, no checkpoint", lambda i: ["validate", *fit(i)[1:]], "needs --ckpt_path"),
    ("test, no checkpoint", lambda i: ["test", *fit(i)[1:]], "needs --ckpt_path"),
    (
        "validate into its run",
        lambda i: validate(i, i.ckpt, *into_run(i)),
        "would log into",
    ),
    (
        "validate over a run",
        lambda i: validate(i, i.root / "copy.ckpt", *into_run(i)),
        "already holds a run; log to another",
    ),
    ("weights_only false", lambda i: fit(i, "--weights_only=false"), "--weights_only false"),
    # ---- checkpoints --------------------------------------------------------------------------
    ("checkpoint missing", lambda i: validate(i, i.no_such_ckpt), "not found"),
    ("checkpoint a directory", lambda i: validate(i, i.root / "run"), "not found"),
    ("checkpoint garbage", lambda i: validate(i, i.root / "garbage.ckpt"), "not a readable"),
    ("checkpoint cut", lambda i: validate(i, i.root / "truncated.ckpt"), "not a readable"),
    ("JSON as checkpoint", lambda i: validate(i, i.toy / "manifest.json"), "not a readable"),
    ("not pwm's", lambda i: validate(i, i.root / "not_pwm.ckpt"), "no hyper_parameters"),
    ("unknown hparams", lambda i: validate(i, i.root / "unknown_hp.ckpt"), "not a pwm world"),
    (
        "pickle runs a shell",
        lambda i: validate(i, i.root / "shell.ckpt"),
        "refused: unpickling it would call posix.system",
    ),
    (
        "fit from a shell pickle",
        lambda i: fit(i, f"--ckpt_path={i.root / 'shell.ckpt'}"),
        "refused: unpickling it would call posix.system",
    ),
    ("test, garbage", lambda i: evaluate("test", i, i.root / "garbage.ckpt"), "not a readable"),
    ("zero-width ckpt", lambda i: validate(i, i.root / "zero_width.ckpt"), "model.embed_dim"),
    (
        "resume on another world",
        lambda i: fit(i, f"--ckpt_path={i.root / 'polis.ckpt'}"),
        "was trained on 'polis'",
    ),
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
    # ---- generate / items: arguments ------------------------------------------------------------
    ("unknown command", lambda i: ["train"], "unknown command 'train'"),
    ("missing --out", lambda i: ["generate", "physics"], "--out"),
    ("unknown world", lambda i: ["generate", "mars", "--out", "x"], "invalid choice: 'mars'"),
    ("toy has no items", lambda i: ["items", "toy", "--out", "x"], "invalid choice: 'toy'"),
    ("zero episodes", lambda i: gen(i.g1, "--episodes", "0"), "--episodes must be >= 1"),
    ("negative episodes", lambda i: gen(i.g1, "--episodes", "-3"), "--episodes must be >= 1"),
    ("absurd episodes", lambda i: gen(i.g1, "--episodes", "1000000000000"), "GB free on"),
    ("absurd image", lambda i: gen(i.g1, "--image-size", "100000"), "GB free on"),
    ("absurd frames", lambda i: gen(i.g1, "--frames", "100000000"), "GB free on"),
    ("absurd items", lambda i: items_cmd(i.g1, "physics", "--items", "10000000000"), "GB free"),
    ("one frame", lambda i: gen(i.g1, "--frames", "1"), "--frames must be >= 2"),
    ("zero frames", lambda i: gen(i.g1, "--frames", "0", world="toy"), "--frames must be >= 2"),
    ("frames text", lambda i: gen(i.g1, "--frames", "ten"), "--frames must be an integer"),
    ("seed -1", lambda i: gen(i.g1, "--seed", "-1"), "--seed must be >= 0"),
    (
        "generate: seed text",
        lambda i: gen(i.g1, "--seed", "x", world="polis"),
        "--seed must be an int",
    ),
    ("workers 0", lambda i: gen(i.g1, "--workers", "0"), "--workers must be >= 1"),
    ("workers absurd", lambda i: gen(i.g1, "--workers", "100000"), "--workers must be <="),
    ("shard >= shards", lambda i: gen(i.g2, "--shard", "2", "--num-shards", "2"), "--shard"),
    ("shard < 0", lambda i: gen(i.g2, "--shard", "-1"), "--shard must be >= 0"),
    ("no shards", lambda i: gen(i.g2, "--num-shards", "0"), "--num-shards must be >= 1"),
    ("tiny image", lambda i: gen(i.g3, "--image-size", "8"), "--image-size must be >= 16"),
    ("no discs", lambda i: gen(i.g4, "--num-objects", "0"), "--num-objects must be in"),
    ("too many discs", lambda i: gen(i.g4, "--num-objects", "100"), "--num-objects must be in"),
    ("radius < 0", lambda i: gen(i.g4, "--radius", "-1"), "--radius must be in"),
    ("radius nan", lambda i: gen(i.g4, "--radius", "nan"), "--radius must be in"),
    ("speed inf", lambda i: gen(i.g4, "--speed", "inf"), "--speed must be in"),
    ("radius text", lambda i: gen(i.g4, "--radius", "big"), "invalid float value: 'big'"),
    ("generate: unknown option", lambda i: gen(i.g4, "--radiu", "1", world="toy"), "unrecognized"),
    ("polis: 1 agent", lambda i: gen(i.g4, "--agents", "1", world="polis"), "--agents"),
    ("polis: 100 agents", lambda i: gen(i.g4, "--agents", "100", world="polis"), "--agents"),
    ("polis: population", lambda i: gen(i.g4, "--population", "x", world="polis"), "population"),
    ("polis: law", lambda i: gen(i.g4, "--law", "anarchy", world="polis"), "anarchy"),
    ("polis: tremble 2", lambda i: gen(i.g4, "--tremble", "2", world="polis"), "--tremble"),
    ("polis: tremble nan", lambda i: gen(i.g4, "--tremble", "nan", world="polis"), "--tremble"),
    ("polis: wander < 0", lambda i: gen(i.g4, "--wander", "-1", world="polis"), "wander"),
    ("polis: crops > frame", lambda i: gen(i.g4, "--crops", "99", world="polis"), "got 99"),
    ("polis: crops < 0", lambda i: gen(i.g4, "--crops", "-1", world="polis"), "--crops"),
    ("physics: crops > frame", lambda i: gen(i.g4, "--crops", "65"), "--crops must be 0 or in"),
    ("polis: payoff inf", lambda i: gen(i.g4, "--payoff-t", "inf", world="polis"), "--payoff-t"),
    ("polis: round 0", lambda i: gen(i.g4, "--round-len", "0", world="polis"), "--round-len"),
    ("polis: mix", lambda i: gen(i.g4, "--dispositions", "x=1", world="polis"), "x"),
    ("polis: shard 0", lambda i: gen(i.g4, "--episodes-per-shard", "0", world="polis"), "shard"),
    (
        "t* outside items",
        lambda i: ["items", "physics", "--out", str(i.g5), "--t-star-min", "0"],
        "--t-star-min",
    ),
    ("t* past frames", lambda i: items_cmd(i.g5, "physics", "--t-star-max", "100"), "--t-star"),
    ("no items", lambda i: items_cmd(i.g5, "physics", "--items", "0"), "--items must be >= 1"),
    ("polis items: before", lambda i: items_cmd(i.g5, "polis", "--before", "0"), "--before"),
    (
        "consequence: after 0",
        lambda i: items_cmd(i.g5, "polis", "--consequence", "--after", "0"),
        "--after",
    ),
    ("--out is a dataset", lambda i: gen(i.toy), "already holds a dataset; pass --overwrite"),
    ("--out is a file", lambda i: gen(i.a_file), "exists and is not a directory"),
    ("--out a file, overwrite", lambda i: gen(i.a_file, "--overwrite"), "is not a directory"),
    ("--out not empty", lambda i: gen(i.not_empty), "exists and is not empty"),
    ("--out is an item set", lambda i: items_cmd(i.items, "physics"), "already holds a dataset"),
    # ---- datasets -----------------------------------------------------------------------------
    ("no dataset", lambda i: fit(i, data=i.nothing_here), "is not a directory"),
    ("dataset is a file", lambda i: fit(i, data=i.a_file), "is not a directory"),
    ("generation killed", lambda i: fit(i, data=i.no_manifest), "no manifest.json"),
    ("manifest a directory", lambda i: fit(i, data=i.manifest_dir), "no manifest.json"),
    ("flipped byte", lambda i: fit(i, data=i.flipped), "shard shard-00001 file pixels.npy fails"),
    ("truncated shard", lambda i: fit(i, data=i.truncated), "shard shard-00000 file state.npy"),
    ("manifest not JSON", lambda i: fit(i, data=i.bad_json), "is not valid JSON"),
    ("manifest not UTF-8", lambda i: fit(i, data=i.not_utf8), "is not valid JSON"),
    ("manifest too deep", lambda i: fit(i, data=i.deep_json), "nested too deeply"),
    ("manifest unsealed", lambda i: fit(i, data=i.unsealed), "fails its own checksum"),
    ("format version", lambda i: fit(i, data=i.future), "format version 99"),
    ("manifest lies", lambda i: fit(i, data=i.shape_lie), "but the manifest says"),
    ("pickled objects", lambda i: fit(i, data=i.objects), "holds Python objects (pickle)"),
    ("missing array file", lambda i: fit(i, data=i.missing_file), "is missing actions.npy"),
    ("shard is a symlink out", lambda i: fit(i, data=i.shard_symlink), "outside the dataset"),
    ("file is a symlink out", lambda i: fit(i, data=i.file_symlink), "outside the dataset"),
    manifest_case("m_shards_oops", "shards must be a non-empty list"),
    manifest_case("m_shard_no_files", "shards[0].files must be a mapping"),
    manifest_case("m_episodes_changed", "but num_episodes is 41"),
    manifest_case("m_shard_dropped", "shards but num_shards is 2"),
    manifest_case("m_shard_escapes", "shards[0].name must be shard-00000"),
    manifest_case("m_array_escapes", "must be a plain name, got '../x'"),
    manifest_case("m_extra_escapes", "must be a plain name, got '../../etc/passwd'"),
    manifest_case("m_extra_reserved", "extra_files may not name manifest.json"),
    manifest_case("m_not_object", "manifest lacks"),
    manifest_case("m_no_world", "manifest lacks world"),
    manifest_case("m_world_int", "world must be a name"),
    manifest_case("m_kind_bogus", "kind must be one of"),
    manifest_case("m_version_true", "format version True"),
    manifest_case("m_no_arrays", "lists no array"),
    manifest_case("m_shape_text", "shape must be a list of sizes"),
    manifest_case("m_shape_negative", "must be >= 0, got -12"),
    manifest_case("m_dtype_object", "dtype must be a numpy dtype"),
    manifest_case("m_dtype_bogus", "dtype must be a numpy dtype"),
    manifest_case("m_episodes_zero", "num_episodes must be >= 1"),
    manifest_case("m_episodes_text", "num_episodes must be an integer"),
    manifest_case("m_num_shards", "num_shards is 7"),
    manifest_case("m_shard_episodes_0", "episodes must be >= 1"),
    manifest_case("m_shard_index", "shards[1].index must be 1"),
    manifest_case("m_digest_short", "must be a sha256"),
    manifest_case("m_num_frames", "num_frames must be"),
    manifest_case("m_extra_not_map", "extra_files must be a mapping"),
    manifest_case("m_file_missing", "files does not match arrays"),
    manifest_case("m_config_int", "config must be a mapping"),
    manifest_case("m_kind_items", "is an item set"),
    manifest_case("m_kind_consequence", "is a counterfactual set, not a training dataset"),
    # ---- item sets ----------------------------------------------------------------------------
    ("dataset, not items", lambda i: probe(i.ckpt, i.toy), "not an item set"),
    ("items missing", lambda i: probe(i.ckpt, i.nothing_here), "is not a directory"),
    ("items corrupted", lambda i: probe(i.ckpt, i.items_flipped), "shard shard-00000 file"),
    ("items.json edited", lambda i: probe(i.ckpt, i.items_edited), "items.json is missing or"),
    ("items.json deleted", lambda i: probe(i.ckpt, i.i_missing), "items.json is missing or"),
    ("items unsealed", lambda i: probe(i.ckpt, i.i_unsealed), "fails its own checksum"),
    ("items: counterfactual", lambda i: probe(i.ckpt, i.i_consequence), "a counterfactual set"),
    ("items.json not JSON", lambda i: probe(i.ckpt, i.i_not_json), "is not valid JSON"),
    ("other world's items", lambda i: probe(i.ckpt, i.items), "pass --cross-world"),
    items_case("i_list", "lacks"),
    items_case("i_no_items", "lacks items"),
    items_case("i_world", "says world 'polis', its manifest 'physics'"),
    items_case("i_no_conditions", "conditions must be a non-empty"),
    items_case("i_comparisons_map", "comparisons must be a list"),
    items_case("i_comparison_no_name", "comparison 0 must be a mapping with a name"),
    items_case("i_comparison_unknown", "uses unknown condition 'levitate'"),
    items_case("i_comparison_twice", "is listed twice"),
    items_case("i_comparison_empty", "needs non-empty implausible and plausible"),
    items_case("i_comparison_K", "has K 0"),
    items_case("i_items_empty", "lists no items"),
    items_case("i_item_not_map", "item 0 is not a mapping"),
    items_case("i_item_no_t_star", "lacks t_star"),
    items_case("i_item_episode_999", "names episode 999"),
    items_case("i_item_episode_text", "episode must be an integer"),
    items_case("i_item_t_star_late", "t* 1000 outside"),
    items_case("i_item_t_star_neg", "t* -1 outside"),
    items_case("i_item_id_twice", "is listed twice"),
    items_case("i_item_condition", "unknown condition 'levitate'"),
    items_case("i_item_label", "has label 'maybe'"),
    items_case("i_item_label_vs_condition", "has label 'implausible'"),
    items_case("i_item_surprisal", "ideal_surprisal is 'x'"),
    items_case("i_group_twice", "holds two items of condition"),
    items_case("i_round_len", "round_len has the wrong type or value"),
    items_case("i_item_surprisal_nan", "ideal_surprisal is nan"),
    items_case("i_episode_twice", "is named by two items"),
    items_case("i_t_star_vs_record", "differs from episode 0's recorded"),
    items_case("i_conditions_swapped", "holds another kind of item"),
    items_case("i_no_vanish", "condition 'vanish' (comparison vanish) has no items"),
    # ---- probe: options and outputs -------------------------------------------------------------
    ("probe: checkpoint missing", lambda i: probe(i.no_such_ckpt, i.items), "not found"),
    ("probe: garbage ckpt", lambda i: probe(i.root / "garbage.ckpt", i.items), "not a readable"),
    ("probe: shell pickle", lambda i: probe(i.root / "shell.ckpt", i.items), "posix.system"),
    ("probe: not pwm's", lambda i: probe(i.root / "not_pwm.ckpt", i.items), "not pwm's"),
    ("probe: no --ckpt", lambda i: ["probe", "--items", str(i.items), "--out", "x"], "--ckpt"),
    ("probe: no --items", lambda i: ["probe", "--ckpt", str(i.ckpt), "--out", "x"], "--items"),
    ("probe: no --out", lambda i: ["probe", "--ckpt", str(i.ckpt), "--items", "x"], "--out"),
    ("probe: unknown option", lambda i: probe(i.ckpt, i.items, "--bogus"), "unrecognized"),
    ("probe: batch 0", lambda i: probe(i.ckpt, i.items, "--batch-size", "0"), "--batch-size"),
    ("probe: batch text", lambda i: probe(i.ckpt, i.items, "--batch-size", "x"), "invalid int"),
    ("probe: device bogus", lambda i: probe(i.ckpt, i.items, "--device", "gpu0"), "not a device"),
    ("probe: device cuda:99", lambda i: probe(i.ckpt, i.items, "--device", "cuda:99"), "CUDA"),
    ("probe: device meta", lambda i: probe(i.ckpt, i.items, "--device", "meta"), "cpu or cuda"),
    (
        "probe: over a probe run",
        lambda i: probe(i.ckpt, i.items, out=i.probe_done),
        "already holds a probe run; pass --overwrite",
    ),
    (
        "probe: over other files",
        lambda i: probe(i.ckpt, i.items, out=i.probe_other),
        "already holds files; pass --overwrite",
    ),
    ("probe: --out a file", lambda i: probe(i.ckpt, i.items, out=i.a_file), "not a directory"),
    (
        "probe: --out under a file",
        lambda i: probe(i.ckpt, i.items, out=i.a_file / "deeper" / "out"),
        "lies under a file",
    ),
    (
        "report: --out deep under a file",
        lambda i: ["report", str(i.probe_done), "--out", str(i.a_file / "x" / "R.md")],
        "must be a file path",
    ),
    ("generate: --out under a file", lambda i: gen(i.a_file / "x"), "a_file, a file"),
    (
        "probe: config missing",
        lambda i: probe(i.ckpt, i.items, "--config", str(i.root / "none.yaml")),
        "not found",
    ),
    *[
        (
            f"probe: config {name}",
            lambda i, name=name: probe(
                i.ckpt, i.items, "--config", str(i.root / "probe_cfg" / f"{name}.yaml")
            ),
            needle,
        )
        for name, needle in (
            ("window", "window must be >= 0"),
            ("context", "context >= 1"),
            ("context_big", "exceeds the model's training window"),
            ("aggregator", "aggregators must be among"),
            ("unknown", "unknown keys ['sede']"),
            ("not_yaml", "is not valid YAML"),
        )
    ],
    (
        "probe: calib not a dataset",
        lambda i: probe(i.ckpt, i.items, "--calib", str(i.nothing_here)),
        "is not a directory",
    ),
    (
        "probe: calib twice",
        lambda i: probe(i.ckpt, i.items, "--calib", str(i.toy), "--calib", str(i.toy)),
        "two --calib datasets of world 'toy'",
    ),
    (
        "probe: probe-data corrupted",
        lambda i: probe(i.ckpt, i.items, "--probe-data", str(i.flipped)),
        "fails its checksum",
    ),
    (
        "probe: consequence on toy",
        lambda i: probe(i.ckpt, i.items, "--cross-world", "--consequence", str(i.toy)),
        "consequence",
    ),
    # ---- report -------------------------------------------------------------------------------
    ("report: no runs", lambda i: ["report", "--out", str(i.g6)], "RUN_DIR"),
    ("report: no --out", lambda i: ["report", str(i.probe_done)], "--out"),
    ("report: not a run", lambda i: ["report", str(i.toy), "--out", str(i.g6)], "no metrics"),
    (
        "report: metrics not JSON",
        lambda i: ["report", str(i.r_not_json), "--out", str(i.g6)],
        "is not valid JSON",
    ),
    (
        "report: metrics a list",
        lambda i: ["report", str(i.r_list), "--out", str(i.g6)],
        "is not a `pwm probe` metrics.json",
    ),
    (
        "report: metrics lacks items",
        lambda i: ["report", str(i.r_no_items), "--out", str(i.g6)],
        "is not a `pwm probe` metrics.json",
    ),
    (
        "report: over a report",
        lambda i: ["report", str(i.probe_done), "--out", str(i.root / "REPORT.md")],
        "pass --overwrite to replace the report",
    ),
    (
        "report: --out a directory",
        lambda i: ["report", str(i.probe_done), "--out", str(i.not_empty)],
        "must be a file path",
    ),
    (
        "report: --out under a file",
        lambda i: ["report", str(i.probe_done), "--out", str(i.a_file / "R.md")],
        "must be a file path",
    ),
]

# `pwm probe --device cuda` on a machine without one (on a machine with one, cuda:99 above)
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
PARAMS = [pytest.param(*c[1:], id=c[0]) for c in CASES] + [
    pytest.param(
        lambda i: probe(i.ckpt, i.items, "--device", "cuda"),
        "this machine has no CUDA device",
        id="probe: device cuda, none here",
        marks=NO_CUDA,
    )
]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file and directory under root, symlinks not followed."""
    out = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        out[path.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.mark.parametrize("make_argv, needle", PARAMS)
def test_bad_input_is_one_line_and_exit_code_2(make_argv, needle, inputs, capsys, monkeypatch):
    argv = make_argv(inputs)
    before, before_cwd = snapshot(inputs.root), cwd_outputs()
    code, lines = run_pwm(argv, capsys, monkeypatch)
    assert code == 2, lines
    assert len(lines) == 1 and needle in lines[0], lines
    known = argv[0] in ("generate", "items", "fit", "validate", "test", "probe", "report")
    assert lines[0].startswith(f"pwm {argv[0]}: error: " if known else "pwm: error: "), lines
    after = snapshot(inputs.root)  # nothing made, changed or removed
    assert after == before, sorted(set(after.items()) ^ set(before.items()))[:3]
    assert cwd_outputs() == before_cwd


REAL_PROCESS = ("negative lr", "validate, no checkpoint", "seed -1", "manifest: m_shard_escapes",
                "probe: over a probe run", "report: over a report")  # fmt: skip


@pytest.mark.parametrize("case", REAL_PROCESS)
def test_the_real_command_agrees(case, inputs):
    """A sample of the table through a real `pwm` process: the same line, exit code 2."""
    _, make_argv, needle = next(c for c in CASES if c[0] == case)
    before = snapshot(inputs.root)
    res = subprocess.run([sys.executable, "-m", "pwm.cli", *map(str, make_argv(inputs))],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], res.stderr[-2000:]
    assert snapshot(inputs.root) == before


def test_the_table_covers_every_kind_of_input():
    ids = [p.id for p in PARAMS]
    assert len(PARAMS) >= 150 and len(set(ids)) == len(ids)
    commands = {c[1](Inputs(Path("/x"), Path("/t"), Path("/i"), Path("/c")))[0] for c in CASES}
    assert commands >= {"generate", "items", "fit", "validate", "test", "probe", "report"}
