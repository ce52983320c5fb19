"""The BN projector of LeWM: Linear -> BatchNorm1d -> GELU -> Linear (DESIGN 5.2).

BatchNorm is needed after the ViT's final LayerNorm, which otherwise pins every embedding to a
sphere-like shell that SIGReg's Gaussian target cannot reach. Accepts (..., in_dim).

`LinearProjector` (`model.projector: linear`, tenth session, issue 28): Linear -> BatchNorm1d,
an affine map, so every linear read of the encoder's output stays a linear read of z (the MLP
projector's last layer maps its hidden layer down to z and may drop any direction: in the crop
models the cue's linear R² is 0.79 in its hidden layer and 0.50 in z).
"""

from __future__ import annotations

from torch import Tensor, nn


class Projector(nn.Module):
    """Linear(in, hidden) -> BatchNorm1d -> GELU -> Linear(hidden, out) on (..., in_dim)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.bn = nn.BatchNorm1d(hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:  # (..., in_dim)
        return self.fc2(self.hidden(x))  # (..., out)

    def hidden(self, x: Tensor) -> Tensor:
        """(..., in_dim) -> the hidden layer after BatchNorm and GELU, (..., hidden_dim)."""
        lead = x.shape[:-1]
        h = self.act(self.bn(self.fc1(x.reshape(-1, x.shape[-1]))))  # (N, hidden)
        return h.reshape(*lead, -1)


class LinearProjector(nn.Module):
    """Linear(in, out) -> BatchNorm1d(out) on (..., in_dim): an affine map to z."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, x: Tensor) -> Tensor:  # (..., in_dim)
        lead = x.shape[:-1]
        return self.bn(self.fc(x.reshape(-1, x.shape[-1]))).reshape(*lead, -1)  # (..., out)


# model.projector -> the encoder's projector, given (in_dim, hidden_dim, out_dim)
PROJECTORS = {
    "mlp": Projector,
    "linear": lambda in_dim, hidden_dim, out_dim: LinearProjector(in_dim, out_dim),
}


class Standardizer(nn.Module):
    """Per-feature standardisation with running statistics, no parameters (`oracle` ablation).

    BatchNorm1d without affine weights on (..., dim): batch statistics in training, the running
    mean and variance in evaluation; a feature constant in a batch maps to 0.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim, affine=False)

    def forward(self, x: Tensor) -> Tensor:  # (..., dim)
        lead = x.shape[:-1]
        return self.bn(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)  # (..., dim)
