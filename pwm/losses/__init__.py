"""Losses: SIGReg (the LeWM regulariser), VICReg (an ablation), the regulariser and
prediction-loss tables."""

from pwm.losses.prediction import PREDICTION_LOSSES
from pwm.losses.regularizers import REGULARIZERS, NoRegularizer
from pwm.losses.sigreg import SIGReg, sigreg_dense
from pwm.losses.vicreg import VICReg, vicreg

__all__ = [
    "PREDICTION_LOSSES",
    "REGULARIZERS",
    "NoRegularizer",
    "SIGReg",
    "VICReg",
    "sigreg_dense",
    "vicreg",
]
