"""Prediction losses: how a prediction of z_{t+1} is scored against its target (DESIGN 5.2).

Each is a module called once per training step as `loss(pred, target)` with the predictions
(B, L-1, D) and the target embeddings they predict (B, L-1, D); it returns a scalar.
`PREDICTION_LOSSES[name]()` builds one; a new prediction loss is one more entry (and, to choose
it from a config, a `model.*` option naming it, which the LightningModule does not have yet).

- `mse` (LeWM): the mean squared error over positions, batch and dimensions.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

# name -> the prediction loss
PREDICTION_LOSSES: dict[str, Callable[[], nn.Module]] = {
    "mse": nn.MSELoss,
}
