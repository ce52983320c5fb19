"""Models: encoders, the BN projector, the AdaLN-zero predictor and the JEPA world model."""

from pwm.models.encoders import StateEncoder, ViTEncoder
from pwm.models.jepa import WorldModel
from pwm.models.predictor import Predictor
from pwm.models.projector import Projector

__all__ = ["Predictor", "Projector", "StateEncoder", "ViTEncoder", "WorldModel"]
