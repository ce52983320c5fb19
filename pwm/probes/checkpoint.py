"""Checkpoints for the probes: load a trained model, build random ones, check them against items.

A checkpoint is loaded by `pwm.checkpoint.load_world_model` (weights_only, never unpickled):
the WorldModel and the hyperparameters it was built from. Randomly initialised networks of the
same architecture (the chance band, DESIGN 4.3/4.4) come from the same builder under a forked,
explicitly seeded torch RNG, so building them does not touch the global RNG. A checkpoint
matches an item set when its observation (kind and shape) matches the items' arrays and it was
trained on the items' world; `cross_world` allows the physics-model x Polis-items (and reverse)
cells of the 2x2 design, where the model is given zero actions: the other world's actions mean
something else (a push in physics; a move and a C/D choice in Polis), and zeros are the least
out-of-distribution input.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pwm.checkpoint import CheckpointError, LoadedModel, load_world_model
from pwm.data.format import Dataset
from pwm.data.manifest import crop_objects_problem
from pwm.models import architecture, build_world_model
from pwm.probes.config import ProbeError
from pwm.probes.items import ItemSet


def load_checkpoint(path: str | Path) -> LoadedModel:
    """The world model (eval, CPU) and hyperparameters of a checkpoint; ProbeError if unusable."""
    try:
        return load_world_model(path)
    except CheckpointError as e:
        raise ProbeError(str(e)) from None


def random_model(hparams: dict, seed: int) -> LoadedModel:
    """A randomly initialised world model of the given architecture (eval mode), built from
    `seed` under a forked torch RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_world_model(**architecture(hparams))
    return LoadedModel(model.eval(), hparams)


def check_dataset(hparams: dict, dataset: Dataset, where: str) -> None:
    """The model must be able to read `dataset`: its observation array and shape, and, for a
    dataset of the model's own world, its action width."""
    obs, size = hparams["observation"], hparams["obs_size"]
    if obs not in dataset.names:
        raise ProbeError(f"{where} {dataset.root} has no {obs!r} array for this {obs} model")
    want = (size, size, 3) if obs == "pixels" else (size,)
    have = tuple(dataset.shape(obs)[1:])
    if have != want:
        raise ProbeError(
            f"the checkpoint reads {obs} of shape {want} but {where} {dataset.root} has {have}"
        )
    problem = obs == "crops" and crop_objects_problem(dataset.manifest, hparams["objects"])
    if problem:
        raise ProbeError(f"{where} {dataset.root}: {problem}")
    if "actions" not in dataset.names:
        raise ProbeError(f"{where} {dataset.root} has no 'actions' array")
    skip = int(hparams.get("frame_skip", 1) or 1)  # a step's action is a block of `skip`
    width = dataset.shape("actions")[1]
    if dataset.world == hparams["world"] and width * skip != hparams["action_dim"]:
        raise ProbeError(
            f"the checkpoint takes {hparams['action_dim']} action features per step "
            f"({skip} frames) but {where} {dataset.root} has {width} per frame"
        )


def check_compatible(hparams: dict, items: ItemSet, cross_world: bool) -> str:
    """Raise ProbeError if the model cannot read the items; return the action mode.

    The action mode is `recorded` (the items' own actions) or `zeros` (cross-world).
    """
    check_dataset(hparams, items.dataset, "items")
    if hparams["world"] != items.world:
        if not cross_world:
            raise ProbeError(
                f"the checkpoint was trained on {hparams['world']!r} but items {items.root} are "
                f"{items.world!r}; pass --cross-world to probe a model on another world's items"
            )
        return "zeros"
    return "recorded"
