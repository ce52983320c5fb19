"""Reading a checkpoint as untrusted input: `torch.load(weights_only=True)` only, one-line errors.

A pwm checkpoint is a Lightning checkpoint of `JEPAModule`: tensors and plain data (the
hyperparameters are saved as dicts, the RNG state as a tensor), so it never needs unpickling. A
file that would run code when unpickled is refused, naming what it would have called; a file
that is not a checkpoint, or not one of a pwm world model, is refused naming the file.
"""

from __future__ import annotations

import inspect
import pickle
import re
from pathlib import Path

import torch

from pwm.module import JEPAModule


class CheckpointError(ValueError):
    """A checkpoint that is unreadable, unsafe, not a pwm checkpoint, or does not fit the data."""


def checkpoint_problem(error: Exception) -> str | None:
    """Why torch.load (weights_only) refused a file, in a few words; None if it is not that."""
    text = str(error)
    unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if unsafe:
        return (
            f"refused: unpickling it would call {unsafe.group(1)}; pwm loads checkpoints with "
            "weights_only=True (tensors and plain data only)"
        )
    if isinstance(error, pickle.UnpicklingError | EOFError) or "PytorchStreamReader" in text:
        return "is not a readable checkpoint (truncated, or not made by torch.save)"
    return None


def read_checkpoint(path: str) -> dict:
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
    unknown = sorted(
        k for k in ckpt["hyper_parameters"] if not k.startswith("_") and k not in known
    )
    if unknown:
        raise CheckpointError(
            f"checkpoint {path} is not a pwm world model (unknown hyperparameters {unknown})"
        )
    return ckpt
