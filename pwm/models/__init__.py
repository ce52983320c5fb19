"""Models: encoders, the BN projector, the AdaLN-zero predictor, the JEPA world model, the
prediction targets and the builder that assembles a world model from plain hyperparameters."""

from pwm.models.builder import (
    EncoderConfig,
    PredictorConfig,
    architecture,
    as_config,
    build_world_model,
)
from pwm.models.encoders import ObjectStateEncoder, StateEncoder, StateIdentity, ViTEncoder
from pwm.models.jepa import WorldModel
from pwm.models.predictor import Predictor
from pwm.models.projector import Projector, Standardizer

__all__ = [
    "EncoderConfig",
    "ObjectStateEncoder",
    "Predictor",
    "PredictorConfig",
    "Projector",
    "Standardizer",
    "StateEncoder",
    "StateIdentity",
    "ViTEncoder",
    "WorldModel",
    "architecture",
    "as_config",
    "build_world_model",
]
