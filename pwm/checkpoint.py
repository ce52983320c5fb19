"""Reading a checkpoint as untrusted input, and the one way to load its world model.

A pwm checkpoint is a Lightning checkpoint of `JEPAModule`: tensors and plain data (the
hyperparameters are saved as dicts, the RNG state as a tensor), so it never needs unpickling. It
is read with `torch.load(weights_only=True)` only: a file that would run code when unpickled is
refused, naming what it would have called; a file that is not a checkpoint, or not one of a pwm
world model, is refused naming the file. `load_world_model` rebuilds the network from the saved
hyperparameters (models/builder.py) and loads its weights, the `model.*` entries of the
state_dict; everything else in the file (optimiser, EMA target, loops) is the trainer's.
"""

from __future__ import annotations

import inspect
import pickle
import re
from pathlib import Path
from typing import NamedTuple

import torch

from pwm.models import WorldModel, architecture, build_world_model
from pwm.module import JEPAModule


class CheckpointError(ValueError):
    """A checkpoint that is unreadable, unsafe, not a pwm checkpoint, or does not fit the data."""


class LoadedModel(NamedTuple):
    """A world model in eval mode and the hyperparameters it was built from."""

    model: WorldModel
    hparams: dict

    def parameters(self):
        """The network's parameters (the probe report counts them)."""
        return self.model.parameters()


def checkpoint_problem(error: Exception) -> str | None:
    """Why torch.load (weights_only) refused a file, in a few words; None if it is not that."""
    text = str(error)
    # torch words this two ways: "Unsupported global: GLOBAL io.open was not an allowed global"
    # and, for a module it blocks outright, "unsupported GLOBAL posix.system whose module posix
    # is blocked"; both name what unpickling would have called
    unsafe = re.search(r"(?i)unsupported(?: global:)? GLOBAL ([\w.]+)", text)
    if unsafe:
        return (
            f"refused: unpickling it would call {unsafe.group(1)}; pwm loads checkpoints with "
            "weights_only=True (tensors and plain data only)"
        )
    if isinstance(error, pickle.UnpicklingError | EOFError) or "PytorchStreamReader" in text:
        return "is not a readable checkpoint (truncated, or not made by torch.save)"
    return None


def hparams_of(saved: dict) -> dict:
    """The JEPAModule arguments among a checkpoint's saved hyperparameters (drops the private
    `_instantiator`-style entries LightningCLI adds)."""
    return {k: v for k, v in saved.items() if not k.startswith("_")}


def read_checkpoint(path: str | Path) -> dict:
    """A pwm checkpoint from a local file, loaded with weights_only=True; CheckpointError if not."""
    if not Path(path).is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any load failure: one line naming the file
        raise CheckpointError(
            f"checkpoint {path} {checkpoint_problem(e) or f'cannot be read ({e})'}"
        ) from None
    if not isinstance(ckpt, dict) or not {"hyper_parameters", "state_dict"} <= set(ckpt):
        raise CheckpointError(f"checkpoint {path} has no hyper_parameters/state_dict: not pwm's")
    known = set(inspect.signature(JEPAModule).parameters)
    unknown = sorted(set(hparams_of(ckpt["hyper_parameters"])) - known)
    if unknown:
        raise CheckpointError(
            f"checkpoint {path} is not a pwm world model (unknown hyperparameters {unknown})"
        )
    return ckpt


def load_world_model(path: str | Path) -> LoadedModel:
    """The world model of a checkpoint (eval mode, CPU) and its hyperparameters (JEPAModule's
    arguments); CheckpointError, one line naming the file, if it cannot be rebuilt."""
    ckpt = read_checkpoint(path)
    hparams = hparams_of(ckpt["hyper_parameters"])
    try:
        model = build_world_model(**architecture(hparams))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} cannot be rebuilt: {e}") from None
    weights = {
        k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")
    }
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        detail = " ".join(str(e).split("\n", 1)[-1].split())
        raise CheckpointError(
            f"checkpoint {path}: weights do not fit its hyperparameters ({detail})"
        ) from None
    return LoadedModel(model.eval(), hparams)
