"""Models: encoders, the BN projector, the AdaLN-zero predictor and the JEPA world model."""

from pwm.models.encoders import ObjectStateEncoder, StateEncoder, StateIdentity, ViTEncoder
from pwm.models.jepa import WorldModel
from pwm.models.predictor import Predictor
from pwm.models.projector import Projector, Standardizer

__all__ = [
    "ObjectStateEncoder",
    "Predictor",
    "Projector",
    "Standardizer",
    "StateEncoder",
    "StateIdentity",
    "ViTEncoder",
    "WorldModel",
]
