"""Build a WorldModel from plain hyperparameters: the one place where a network is assembled.

The arguments are the architecture hyperparameters a checkpoint stores (the `model.*` options
of `pwm fit` without those of the loss and the optimiser), so training (pwm/module.py), the
checkpoint loader (pwm/checkpoint.py) and the probes' random networks build the same network
from the same values. The choices made here:

- the encoder follows the observation: a ViT for pixels, an MLP for the flat state, one
  shared MLP per object when the state splits into `objects` k > 1, and one shared CNN per
  object crop for `crops` (pixels around each agent at the simulator's positions; encoders.py);
- the BN projector maps each object's feature to its D / k part of the embedding z (`projector`:
  LeWM's MLP, or `linear`, an affine map that keeps every linear read of the encoder's output);
- `target: oracle` has no encoder to learn: z is the state standardised per feature (D = the
  state's size), so only the predictor learns; no other target changes the network;
- the predictor (predictor.py) covers windows of up to `window` frames and attends to `history`;
  a `prediction` loss that scores a distribution (`gaussian`, losses/prediction.py) gives it a
  log-variance head.

Invalid combinations are refused here with one line naming the option.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields

from torch import nn

from pwm.losses.prediction import PREDICTION_LOSSES, VARIANCE
from pwm.models.encoders import (
    TOKENS,
    CropEncoder,
    ObjectStateEncoder,
    StateEncoder,
    StateIdentity,
    ViTEncoder,
    crop_side,
)
from pwm.models.jepa import WorldModel
from pwm.models.predictor import Predictor
from pwm.models.projector import PROJECTORS, Standardizer
from pwm.models.targets import TARGETS

OBSERVATIONS = ("pixels", "state", "crops")  # what the encoder reads (data.observation)


@dataclass(frozen=True)
class EncoderConfig:
    """Frame encoder.

    Args:
        patch_size: ViT patch side (pixels); must divide the image size.
        width: ViT / MLP width.
        depth: ViT layers / MLP hidden layers.
        heads: ViT attention heads.
        mlp_dim: ViT MLP hidden size (0: 4 * width).
        tokens: what the ViT gives per frame: `cls` (one vector, LeWM) or `patches` (one token
            per patch; model.objects must then be the number of patches).
    """

    patch_size: int = 8
    width: int = 192
    depth: int = 12
    heads: int = 3
    mlp_dim: int = 0
    tokens: str = "cls"


@dataclass(frozen=True)
class PredictorConfig:
    """Causal AdaLN-zero predictor.

    Args:
        width: transformer width.
        depth: number of blocks.
        heads: attention heads.
        head_dim: dimension per head.
        mlp_dim: MLP hidden size.
        dropout: dropout rate.
    """

    width: int = 192
    depth: int = 6
    heads: int = 16
    head_dim: int = 64
    mlp_dim: int = 2048
    dropout: float = 0.1


def as_config(cls: type, value):
    """A config section as its dataclass `cls`, given as one or as a dict (from a checkpoint)."""
    if isinstance(value, cls):
        return value
    unknown = sorted(set(value) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}")
    return cls(**value)


def build_world_model(
    observation: str = "pixels",
    obs_size: int = 64,
    action_dim: int = 0,
    window: int = 16,
    history: int = 8,
    embed_dim: int = 192,
    projector_hidden: int = 2048,
    encoder: EncoderConfig | dict = EncoderConfig(),  # noqa: B008 (frozen, immutable)
    predictor: PredictorConfig | dict = PredictorConfig(),  # noqa: B008
    target: str = "online",
    objects: int = 1,
    prediction: str = "mse",
    projector: str = "mlp",
) -> WorldModel:
    """A randomly initialised WorldModel (training mode), drawn from torch's global RNG.

    The arguments mean what the `model.*` options of the same names do (pwm/module.py), whose
    defaults they share; `encoder` and `predictor` may be dicts, as checkpoints store them. Of
    the targets (targets.py) only `oracle` changes the network.
    """
    encoder, predictor = as_config(EncoderConfig, encoder), as_config(PredictorConfig, predictor)
    check(observation, obs_size, window, history, embed_dim, encoder, target, objects,
          projector_hidden=projector_hidden, predictor=predictor)  # fmt: skip
    if projector not in PROJECTORS:
        names = ", ".join(PROJECTORS)
        raise ValueError(f"model.projector must be one of {names}, got {projector!r}")
    if prediction not in PREDICTION_LOSSES:
        names = ", ".join(PREDICTION_LOSSES)
        raise ValueError(f"model.prediction must be one of {names}, got {prediction!r}")
    if target == "oracle":  # z = the standardised state; nothing but the predictor learns
        enc, proj, embed_dim = StateIdentity(obs_size), Standardizer(obs_size), obs_size
    else:
        enc = frame_encoder(observation, obs_size, encoder, objects)
        proj = PROJECTORS[projector](enc.out_dim, projector_hidden, embed_dim // objects)
    p = predictor
    pred = Predictor(
        embed_dim,
        action_dim,
        history,
        max_len=window,
        width=p.width,
        depth=p.depth,
        heads=p.heads,
        head_dim=p.head_dim,
        mlp_dim=p.mlp_dim,
        dropout=p.dropout,
        objects=objects,
        variance=VARIANCE[prediction],
    )
    return WorldModel(enc, proj, pred)


def frame_encoder(observation: str, obs_size: int, cfg: EncoderConfig, objects: int) -> nn.Module:
    """The learned encoder of one frame: ViT (pixels), MLP (state), per-object MLP (k > 1) or
    per-object CNN (crops)."""
    if observation == "crops":
        return CropEncoder(obs_size, objects, cfg.width, cfg.depth)
    if observation == "pixels":
        return ViTEncoder(
            obs_size, cfg.patch_size, cfg.width, cfg.depth, cfg.heads, cfg.mlp_dim, cfg.tokens
        )
    if objects > 1:
        return ObjectStateEncoder(obs_size, objects, cfg.width, cfg.depth)
    return StateEncoder(obs_size, cfg.width, cfg.depth)


def check(
    observation: str,
    obs_size: int,
    window: int,
    history: int,
    embed_dim: int,
    encoder: EncoderConfig,
    target: str,
    objects: int,
    projector_hidden: int = 1,
    predictor: PredictorConfig | None = None,
) -> None:
    """ValueError, one line naming the option, for a combination no network can be built from:
    a size out of range (a width, depth or head count below 1, a dropout outside [0, 1)), or
    options that do not fit each other."""
    sizes = [
        ("model.obs_size", obs_size, 1),
        ("model.embed_dim", embed_dim, 1),
        ("model.projector_hidden", projector_hidden, 1),
        ("model.window", window, 2),
        *[(f"model.encoder.{k}", getattr(encoder, k), 1)
          for k in ("patch_size", "width", "depth", "heads")],
        ("model.encoder.mlp_dim", encoder.mlp_dim, 0),
    ]  # fmt: skip
    if predictor is not None:
        sizes += [(f"model.predictor.{k}", getattr(predictor, k), 1)
                  for k in ("width", "depth", "heads", "head_dim", "mlp_dim")]  # fmt: skip
    for name, value, least in sizes:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    if predictor is not None and not 0 <= predictor.dropout < 1:
        raise ValueError(f"model.predictor.dropout must be in [0, 1), got {predictor.dropout}")
    if observation == "pixels" and encoder.width % encoder.heads:
        raise ValueError(
            f"model.encoder.heads {encoder.heads} does not divide model.encoder.width "
            f"{encoder.width}"
        )
    if target not in TARGETS:
        raise ValueError(f"model.target must be one of {', '.join(TARGETS)}, got {target!r}")
    if observation not in OBSERVATIONS:
        raise ValueError(
            f"model.observation must be one of {', '.join(OBSERVATIONS)}, got {observation!r}"
        )
    if not 1 <= history < window:
        raise ValueError(
            f"model.history must be in [1, data.window), got {history} vs window {window}"
        )
    if target == "oracle" and observation != "state":
        raise ValueError("model.target oracle needs state observations (--data.observation=state)")
    if objects < 1:
        raise ValueError(f"model.objects must be >= 1, got {objects}")
    if encoder.tokens not in TOKENS:
        raise ValueError(
            f"model.encoder.tokens must be one of {', '.join(TOKENS)}, got {encoder.tokens!r}"
        )
    if observation == "pixels" and obs_size % encoder.patch_size:
        raise ValueError(
            f"model.encoder.patch_size {encoder.patch_size} does not divide "
            f"the image size {obs_size}"
        )
    if encoder.tokens == "patches":
        if observation != "pixels":  # (the oracle target, state only, is refused above)
            raise ValueError("model.encoder.tokens patches needs pixel observations")
        patches = (obs_size // encoder.patch_size) ** 2
        if objects != patches:
            raise ValueError(
                f"model.encoder.tokens patches gives {patches} tokens per frame ({obs_size} "
                f"px / patch {encoder.patch_size}, squared): set model.objects={patches}, "
                f"got {objects}"
            )
    elif objects > 1 and observation == "pixels":
        raise ValueError(
            "model.objects > 1 needs state observations or crops (--data.observation=state|crops) "
            "or, with pixels, model.encoder.tokens=patches"
        )
    if observation == "crops":
        per = obs_size // objects
        if obs_size % objects or not crop_side(per):
            raise ValueError(
                f"data.observation crops: {obs_size} features are not model.objects {objects} "
                "rows of 2 + 3 C^2 (position, then a C x C RGB crop): set model.objects to the "
                "dataset's agents"
            )
    if objects > 1:
        if observation == "state" and obs_size % objects:
            raise ValueError(
                f"model.objects {objects} does not divide the {obs_size} state features"
            )
        if target != "oracle" and embed_dim % objects:
            raise ValueError(f"model.objects {objects} does not divide model.embed_dim {embed_dim}")


ARCHITECTURE = tuple(inspect.signature(build_world_model).parameters)


def architecture(hparams: dict) -> dict:
    """The `build_world_model` arguments among a checkpoint's hyperparameters (absent: default)."""
    return {k: hparams[k] for k in ARCHITECTURE if k in hparams}
