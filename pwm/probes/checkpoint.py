"""Checkpoints for the probes: load a trained model, build random ones, check them against items.

A checkpoint is read with `torch.load(weights_only=True)` (never unpickled) and rebuilt from its
saved hyperparameters. Randomly initialised networks of the same architecture (the chance band,
DESIGN 4.3/4.4) are built under a forked, explicitly seeded torch RNG, so building them does not
touch the global RNG. A checkpoint matches an item set when its observation (kind and shape)
matches the items' arrays and it was trained on the items' world; `cross_world` allows the
physics-model x Polis-items (and reverse) cells of the 2x2 design, where the model is given zero
actions: the other world's actions mean something else (a push in physics; a move and a C/D
choice in Polis), and zeros are the least out-of-distribution input.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pwm.checkpoint import CheckpointError, read_checkpoint
from pwm.data.format import Dataset
from pwm.module import JEPAModule
from pwm.probes.config import ProbeError
from pwm.probes.items import ItemSet


def load_checkpoint(path: str | Path) -> JEPAModule:
    """The JEPAModule of a checkpoint (read by `pwm.checkpoint.read_checkpoint`), eval, CPU."""
    try:
        ckpt = read_checkpoint(str(path))
    except CheckpointError as e:
        raise ProbeError(str(e)) from None
    module = JEPAModule(**hparams_of(ckpt["hyper_parameters"]))
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise ProbeError(f"{path}: weights do not fit its hyperparameters ({e})") from None
    return module.eval()


def hparams_of(saved: dict) -> dict:
    """The JEPAModule arguments among a checkpoint's saved hyperparameters."""
    return {k: v for k, v in saved.items() if not k.startswith("_")}


def random_model(hparams: dict, seed: int) -> JEPAModule:
    """A randomly initialised JEPAModule with the given architecture (eval mode)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = JEPAModule(**hparams_of(hparams))
    return module.eval()


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
