"""The LightningModule: where model, loss and optimiser meet (DESIGN 2, 5).

The network comes from `build_world_model` (models/builder.py); this module adds the loss, the
optimiser and the logging. One `model_step` serves train, val and test. A batch holds windows of
L frames; every frame is encoded once, the predictor predicts every next step in one causal pass,
and

    loss = PredLoss(pred_t, target_{t+1}) + lambda * Reg(z)

with three parts chosen by name from small tables, each called once per step: the target
(`model.target`, models/targets.py: LeWM's `online` z, `stopgrad`, `ema`, `frozen`, `oracle`),
the regulariser (`model.regularizer`, losses/regularizers.py: `sigreg`, `vicreg`, `none`) and the
prediction loss (`model.prediction`, losses/prediction.py: LeWM's `mse`, or `gaussian`); a batch
that carries per-step, per-agent `weight`s (the data's `event_weight`, datamodule.py) trains on
the weighted loss (losses/prediction.weighted_loss) and logs it as `train/weighted_pred_loss`
beside the unweighted `train/pred_loss`. Every step
logs `stage/pred_loss`, `stage/reg_loss`, `stage/loss` and embedding health (`stage/z_std`,
`stage/z_rank`), so collapse shows in every run. A non-finite loss or gradient stops training with a
clear message before any weight changes (every rank stops at once under DDP), so the last checkpoint
written is the last good one.

The submodules' names are the keys of every checkpoint's state_dict: `model.*` (the
WorldModel), the regulariser under its own name (`sigreg.step`) and the target as
`target_encoder` (`target_encoder.encoder.*` and `.projector.*` for `ema`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from einops import rearrange
from torch import Tensor, nn

from pwm.health import effective_rank, embedding_std
from pwm.losses import PREDICTION_LOSSES, REGULARIZERS
from pwm.losses.prediction import weighted_loss
from pwm.models import EncoderConfig, PredictorConfig, as_config, build_world_model
from pwm.models.projector import PROJECTORS
from pwm.models.targets import TARGETS

# the choices of `model.regularizer` and `model.target` (and of `--help`): the tables' names
RegularizerName = Literal[tuple(REGULARIZERS)]
PredictionName = Literal[tuple(PREDICTION_LOSSES)]
TargetName = Literal[tuple(TARGETS)]
ProjectorName = Literal[tuple(PROJECTORS)]


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warmup then cosine decay to `min_lr_ratio * lr`.

    Args:
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warmup steps.
        min_lr_ratio: final lr as a fraction of the peak.
    """

    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05

    def __post_init__(self):
        for name, ok, want in (
            ("lr", _finite(self.lr) and self.lr >= 0, "a finite number >= 0"),  # 0: frozen
            ("weight_decay", _finite(self.weight_decay) and self.weight_decay >= 0, ">= 0"),
            ("warmup_steps", _integer(self.warmup_steps) and self.warmup_steps >= 0,
             "an integer >= 0"),
            ("min_lr_ratio", _finite(self.min_lr_ratio) and 0 <= self.min_lr_ratio <= 1,
             "in [0, 1]"),
        ):  # fmt: skip
            if not ok:
                raise ValueError(f"model.optim.{name} must be {want}, got {getattr(self, name)!r}")


def feature_scale(
    weights: list[float] | None, target: str, prediction: str, obs_size: int, objects: int
) -> Tensor | None:
    """(D,) the square roots of `model.feature_weights` scaled to mean 1 and tiled over the
    objects (squared errors of scaled features are the weighted errors), or None without
    weights. Refuses weights for learned embeddings (their features name nothing), a
    likelihood loss (its variance already weights each feature) or the wrong length."""
    if weights is None:
        return None
    if target != "oracle" or prediction != "mse":
        raise ValueError(
            "model.feature_weights needs model.target oracle and model.prediction mse (z's "
            f"features are the state's columns only then), got {target!r} and {prediction!r}"
        )
    per = obs_size // objects
    w = list(weights)
    if len(w) != per or not all(_finite(v) and v >= 0 for v in w) or sum(w) <= 0:
        raise ValueError(
            f"model.feature_weights must be {per} numbers >= 0 (one per state column of an "
            f"object), not all 0, got {weights!r}"
        )
    w = torch.tensor(w, dtype=torch.float32)
    return (w / w.mean()).sqrt().repeat(objects)


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class JEPAModule(L.LightningModule):
    """LeWM-style JEPA world model: encoder -> BN projector -> z; causal predictor over z.

    Args:
        observation: `pixels` (ViT encoder), `state` (MLP encoder) or `crops` (a CNN per agent's
            crop of the frame at its simulated position); linked from data.
        obs_size: image side or state features; linked from the dataset.
        action_dim: action features per step; linked from the dataset (0 allowed).
        window: frames per training window; linked from data.
        world: name of the training world; linked from the dataset, checked by probes.
        law: the Polis law of the training data (`reciprocity`, `justice`); linked from the
            dataset (None for other worlds); probes report a model probed on another law's items.
        frame_skip: frames per time step; linked from data (the probes step the same way).
        history: H, frames of context the predictor attends to; must be < window.
        embed_dim: D, embedding dimension (with target `oracle`: the state's size, obs_size).
        projector_hidden: hidden size of the encoder's BN projector (`mlp` only).
        projector: the encoder's projector to z: `mlp` (LeWM: Linear, BatchNorm, GELU, Linear)
            or `linear` (Linear, BatchNorm: an affine map, so what the encoder's output holds
            linearly z holds linearly; models/projector.py).
        encoder: frame encoder settings.
        predictor: predictor settings.
        regularizer: anti-collapse term: `sigreg` (LeWM), `vicreg`, or `none` (collapses).
        lam: weight lambda of the regulariser.
        num_directions: SIGReg's random directions M per step.
        target: `online` (LeWM, gradients into both sides), `stopgrad` (the same encoder as
            target, detached: gradients through the context only), `ema` (stop-gradient EMA
            target) or `frozen` (encoder and projector fixed at initialisation; only the
            predictor learns; their BatchNorm statistics still track the data) or `oracle`
            (state observations only: z is the simulator state standardised per feature, no
            encoder parameters; only the predictor learns).
        ema_momentum: EMA decay of the target encoder when target is `ema`.
        prediction: the prediction loss, and so the probes' surprise: `mse` (LeWM's squared
            error) or `gaussian` (the predictor also gives a log-variance per feature; the loss
            is the Gaussian negative log-likelihood; losses/prediction.py says why).
        objects: k, object tokens per frame: 1 (LeWM: one embedding per frame) or, with state
            observations, the number of objects in the state (object-centric: one shared encoder
            per object, z the concatenated object embeddings of embed_dim / k each, and a
            predictor that attends over objects and time; see models/predictor.py).
        feature_weights: with target `oracle` and the `mse` prediction only (z's features are
            then the state's named columns): one weight >= 0 per column of an object's state
            (obs_size / k of them, e.g. x, y, vx, vy, cue_c, cue_d, link_j), tiled over the
            objects and scaled to mean 1, that the training loss puts on each feature's squared
            error (train/pred_loss, the validation loss and the probes' surprise stay
            unweighted). Why: a diagnostic of what the loss's allocation over features teaches
            (a motion-only loss: does the predictor learn where agents go when nothing else is
            asked of it?). None: every feature alike.
        optim: optimiser settings.
    """

    def __init__(
        self,
        observation: Literal["pixels", "state", "crops"] = "pixels",
        obs_size: int = 64,
        action_dim: int = 0,
        window: int = 16,
        world: str = "unknown",
        law: str | None = None,
        frame_skip: int = 1,
        history: int = 8,
        embed_dim: int = 192,
        projector_hidden: int = 2048,
        encoder: EncoderConfig = EncoderConfig(),  # noqa: B008 (frozen, immutable)
        predictor: PredictorConfig = PredictorConfig(),  # noqa: B008
        regularizer: RegularizerName = "sigreg",
        lam: float = 0.09,
        num_directions: int = 1024,
        target: TargetName = "online",
        ema_momentum: float = 0.996,
        objects: int = 1,
        prediction: PredictionName = "mse",
        optim: OptimConfig = OptimConfig(),  # noqa: B008
        feature_weights: list[float] | None = None,
        projector: ProjectorName = "mlp",
    ):
        super().__init__()
        if not _finite(lam) or lam < 0:
            raise ValueError(f"model.lam must be >= 0, got {lam}")
        if not _integer(num_directions) or num_directions < 1:
            raise ValueError(f"model.num_directions must be >= 1, got {num_directions}")
        if not _finite(ema_momentum) or not 0 <= ema_momentum <= 1:
            raise ValueError(f"model.ema_momentum must be in [0, 1], got {ema_momentum}")
        if not _integer(frame_skip) or frame_skip < 1:
            raise ValueError(f"model.frame_skip must be >= 1, got {frame_skip}")
        if regularizer not in REGULARIZERS:
            names = ", ".join(REGULARIZERS)
            raise ValueError(f"model.regularizer must be one of {names}, got {regularizer!r}")
        # keep the dataclass for use, store plain dicts as hyperparameters (weights_only loads)
        self.optim_cfg = as_config(OptimConfig, optim)
        encoder = asdict(as_config(EncoderConfig, encoder))
        predictor = asdict(as_config(PredictorConfig, predictor))
        optim = asdict(self.optim_cfg)
        self.save_hyperparameters()
        self.model = build_world_model(
            observation=observation,
            obs_size=obs_size,
            action_dim=action_dim,
            window=window,
            history=history,
            embed_dim=embed_dim,
            projector_hidden=projector_hidden,
            encoder=encoder,
            predictor=predictor,
            target=target,
            objects=objects,
            prediction=prediction,
            projector=projector,
        )
        self.add_module(regularizer, REGULARIZERS[regularizer](num_directions))
        self.target_encoder = TARGETS[target](self.model, ema_momentum)
        self.prediction_loss = PREDICTION_LOSSES[prediction]()
        self.register_buffer(
            "feature_scale",
            feature_scale(feature_weights, target, prediction, obs_size, objects),
            persistent=False,  # rebuilt from the hyperparameter; older checkpoints load as before
        )

    @property
    def regularizer(self) -> nn.Module:
        """The regulariser `model.regularizer` names (registered under that name)."""
        return self.get_submodule(self.hparams.regularizer)

    # -- the one step shared by train, val and test ---------------------------------------------
    def model_step(self, batch: dict[str, Tensor], stage: str) -> dict[str, Tensor]:
        obs, actions = batch["obs"], batch["actions"]  # (B, L, ...), (B, L, A)
        z = self.model.encode(obs)  # (B, L, D)
        pred, logvar = self.model.predict_dist(z[:, :-1], actions[:, :-1])  # (B, L-1, D) each
        target = self.target_encoder(obs, z)[:, 1:]  # (B, L-1, D)
        assert pred.shape == target.shape, (pred.shape, target.shape)
        step = self.global_step if stage == "train" else 0  # fixed directions for val/test
        losses = {
            "pred_loss": self.prediction_loss(pred, target, logvar),
            "reg_loss": self.regularizer(rearrange(z, "b t d -> t b d"), step),  # (L, B, D) in
        }
        pred_loss = losses["pred_loss"]
        scaled = (pred, target)  # model.feature_weights: each feature's error scaled (training)
        if self.feature_scale is not None and stage == "train":
            scaled = (pred * self.feature_scale, target * self.feature_scale)
            pred_loss = losses["weighted_pred_loss"] = self.prediction_loss(*scaled, logvar)
        weight = batch.get("weight") if stage == "train" else None  # (B, L, n): data.event_weight
        if weight is not None:  # the loss trained on; pred_loss stays the unweighted one
            # per object for the object-centric models, state or crops (patch tokens are no agents)
            k = self.hparams.objects if self.hparams.observation != "pixels" else 1
            pred_loss = weighted_loss(*scaled, logvar, weight[:, 1:], k)
            losses["weighted_pred_loss"] = pred_loss
        losses["loss"] = pred_loss + self.hparams.lam * losses["reg_loss"]
        losses["z_std"] = embedding_std(z)
        losses["z_rank"] = effective_rank(z)
        return losses

    def _log(self, losses: dict[str, Tensor], stage: str) -> None:
        on_step = stage == "train"
        self.log_dict(
            {f"{stage}/{k}": v.detach() for k, v in losses.items()},
            on_step=on_step,
            on_epoch=not on_step,
            prog_bar=False,
            sync_dist=not on_step,
        )
        self.log(
            f"{stage}_loss",
            losses["loss"].detach(),
            prog_bar=True,
            on_step=on_step,
            on_epoch=not on_step,
            logger=False,
            sync_dist=not on_step,
        )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        losses = self.model_step(batch, "train")
        # decided jointly by every rank (a no-op on one device), so all ranks stop together
        finite = bool(torch.isfinite(losses["loss"]))
        if not self.trainer.strategy.reduce_boolean_decision(finite, all=True):
            detail = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
            where = " (on another rank)" if finite else f" ({detail})"
            raise FloatingPointError(
                f"non-finite loss at step {self.global_step}{where}; training stopped, "
                + self._kept()
            )
        self._log(losses, "train")
        schedule = getattr(self.trainer.datamodule, "hobbesian_p", None)  # curricula (DESIGN 5.4)
        if schedule is not None and (p := schedule(self.global_step)) is not None:
            self.log("data/hobbesian_fraction", p, on_step=True, on_epoch=False)
        return losses["loss"]

    def on_before_optimizer_step(self, optimizer) -> None:
        # a finite loss can still have non-finite gradients; stop before they reach the weights
        # (except under fp16 loss scaling, whose scaler skips such steps by design)
        if self._trainer is not None and getattr(self._trainer.precision_plugin, "scaler", None):
            return
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if grads and not torch.isfinite(torch.nn.utils.get_total_norm(grads)):
            raise FloatingPointError(
                f"non-finite gradient at step {self.global_step}; training stopped, " + self._kept()
            )

    def _kept(self) -> str:
        """What a stopped run leaves: its last checkpoint (written before the fault), or none."""
        trainer = self._trainer
        paths = [getattr(trainer, "ckpt_path", None)] if trainer is not None else []
        for cb in getattr(trainer, "checkpoint_callbacks", []) if trainer is not None else []:
            paths += [getattr(cb, "last_model_path", ""), getattr(cb, "best_model_path", "")]
        if any(p and Path(p).is_file() for p in paths):
            return "the last good checkpoint is kept"
        return "no checkpoint had been written yet (nothing to resume from)"

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._log(self.model_step(batch, "val"), "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._log(self.model_step(batch, "test"), "test")

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.target_encoder.update(self.model)  # the EMA target follows the online weights

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # the global RNG drives dropout; saving it makes a resumed run bit-identical
        checkpoint["torch_rng_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])

    def configure_optimizers(self):
        o = self.optim_cfg
        decay = [p for n, p in self.named_parameters() if p.requires_grad and p.ndim >= 2]
        no_decay = [p for n, p in self.named_parameters() if p.requires_grad and p.ndim < 2]
        opt = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": o.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=o.lr,
        )
        total = max(int(self.trainer.estimated_stepping_batches), 1)

        def schedule(step: int) -> float:
            if step < o.warmup_steps:
                return (step + 1) / o.warmup_steps
            progress = min((step - o.warmup_steps) / max(total - o.warmup_steps, 1), 1.0)
            return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
