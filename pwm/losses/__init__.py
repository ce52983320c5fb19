"""Losses: SIGReg (the LeWM regulariser) and VICReg (an ablation)."""

from pwm.losses.sigreg import SIGReg, sigreg_dense
from pwm.losses.vicreg import vicreg

__all__ = ["SIGReg", "sigreg_dense", "vicreg"]
