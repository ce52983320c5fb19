"""The LightningModule: where model, loss and optimiser meet (DESIGN 2, 5).

One `model_step` serves train, val and test. A batch holds windows of L frames; every frame is
encoded once, the predictor predicts every next step in one causal pass, and

    loss = mean((pred_t - z_{t+1})^2) + lambda * Reg(z),   Reg in {SIGReg, VICReg, none}

with gradients flowing into both sides (LeWM: no EMA, no stop-gradient). The ablation
`target: ema` instead predicts the embeddings of an EMA copy of encoder+projector with
stop-gradient (BYOL / I-JEPA style), and `target: frozen` keeps encoder and projector at their
random initialisation and trains the predictor alone (the untrained-encoder ablation: a fixed
random feature map that cannot learn to drop what it cannot predict); `target: stopgrad` keeps
LeWM's online encoder and regulariser but detaches the prediction target (the loss's gradient
reaches the encoder through the context frames only, so nothing pays it to drop from z what the
predictor cannot predict); `target: oracle` (state
observations only) replaces encoder and projector by the standardised simulator state itself,
so the predictor alone is tested on what it can learn when no representation is in the way.
Every step logs
`stage/pred_loss`, `stage/reg_loss`, `stage/loss` and embedding health (`stage/z_std`,
`stage/z_rank`), so collapse shows in every run.
A non-finite loss or gradient stops training with a clear message before any weight changes
(every rank stops at once under DDP), so the last checkpoint written is the last good one.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from pwm.health import effective_rank, embedding_std
from pwm.losses import SIGReg, vicreg
from pwm.models import (
    ObjectStateEncoder,
    Predictor,
    Projector,
    Standardizer,
    StateEncoder,
    StateIdentity,
    ViTEncoder,
    WorldModel,
)

TARGETS = ("online", "stopgrad", "ema", "frozen", "oracle")  # model.target, see JEPAModule


@dataclass(frozen=True)
class EncoderConfig:
    """Frame encoder.

    Args:
        patch_size: ViT patch side (pixels); must divide the image size.
        width: ViT / MLP width.
        depth: ViT layers / MLP hidden layers.
        heads: ViT attention heads.
        mlp_dim: ViT MLP hidden size (0: 4 * width).
    """

    patch_size: int = 8
    width: int = 192
    depth: int = 12
    heads: int = 3
    mlp_dim: int = 0


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


def _as(cls, value):
    """A config section as its dataclass, whether given as one or as a dict (from a checkpoint)."""
    return cls(**value) if isinstance(value, dict) else value


class JEPAModule(L.LightningModule):
    """LeWM-style JEPA world model: encoder -> BN projector -> z; causal predictor over z.

    Args:
        observation: `pixels` (ViT encoder) or `state` (MLP encoder); linked from data.
        obs_size: image side or state features; linked from the dataset.
        action_dim: action features per step; linked from the dataset (0 allowed).
        window: frames per training window; linked from data.
        world: name of the training world; linked from the dataset, checked by probes.
        law: the Polis law of the training data (`reciprocity`, `justice`); linked from the
            dataset (None for other worlds); probes report a model probed on another law's items.
        frame_skip: frames per time step; linked from data (the probes step the same way).
        history: H, frames of context the predictor attends to; must be < window.
        embed_dim: D, embedding dimension (with target `oracle`: the state's size, obs_size).
        projector_hidden: hidden size of the encoder's BN projector.
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
        objects: k, object tokens per frame: 1 (LeWM: one embedding per frame) or, with state
            observations, the number of objects in the state (object-centric: one shared encoder
            per object, z the concatenated object embeddings of embed_dim / k each, and a
            predictor that attends over objects and time; see models/predictor.py).
        optim: optimiser settings.
    """

    def __init__(
        self,
        observation: Literal["pixels", "state"] = "pixels",
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
        regularizer: Literal["sigreg", "vicreg", "none"] = "sigreg",
        lam: float = 0.09,
        num_directions: int = 1024,
        target: Literal["online", "stopgrad", "ema", "frozen", "oracle"] = "online",
        ema_momentum: float = 0.996,
        objects: int = 1,
        optim: OptimConfig = OptimConfig(),  # noqa: B008
    ):
        super().__init__()
        encoder, predictor, optim = (
            _as(EncoderConfig, encoder),
            _as(PredictorConfig, predictor),
            _as(OptimConfig, optim),
        )
        if not 1 <= history < window:
            raise ValueError(
                f"model.history must be in [1, data.window), got {history} vs window {window}"
            )
        if lam < 0:
            raise ValueError(f"model.lam must be >= 0, got {lam}")
        if regularizer not in ("sigreg", "vicreg", "none"):
            raise ValueError(
                f"model.regularizer must be sigreg, vicreg or none, got {regularizer!r}"
            )
        if target not in TARGETS:
            raise ValueError(f"model.target must be one of {', '.join(TARGETS)}, got {target!r}")
        if target == "oracle" and observation != "state":
            raise ValueError(
                "model.target oracle needs state observations (--data.observation=state)"
            )
        if objects < 1:
            raise ValueError(f"model.objects must be >= 1, got {objects}")
        if objects > 1:
            if observation != "state":
                raise ValueError(
                    "model.objects > 1 needs state observations (--data.observation=state)"
                )
            if obs_size % objects:
                raise ValueError(
                    f"model.objects {objects} does not divide the {obs_size} state features"
                )
            if target != "oracle" and embed_dim % objects:
                raise ValueError(
                    f"model.objects {objects} does not divide model.embed_dim {embed_dim}"
                )
        if observation == "pixels" and obs_size % encoder.patch_size:
            raise ValueError(
                f"model.encoder.patch_size {encoder.patch_size} does not divide "
                f"the image size {obs_size}"
            )
        # keep the dataclasses for use, store plain dicts as hyperparameters (weights_only loads)
        self.encoder_cfg, self.predictor_cfg, self.optim_cfg = encoder, predictor, optim
        encoder, predictor, optim = asdict(encoder), asdict(predictor), asdict(optim)
        self.save_hyperparameters()
        encoder, predictor = self.encoder_cfg, self.predictor_cfg
        if observation == "pixels":
            enc = ViTEncoder(
                obs_size,
                encoder.patch_size,
                encoder.width,
                encoder.depth,
                encoder.heads,
                encoder.mlp_dim,
            )
        elif observation == "state" and objects > 1:
            enc = ObjectStateEncoder(obs_size, objects, encoder.width, encoder.depth)
        elif observation == "state":
            enc = StateEncoder(obs_size, encoder.width, encoder.depth)
        else:
            raise ValueError(f"model.observation must be pixels or state, got {observation!r}")
        proj = Projector(enc.out_dim, projector_hidden, embed_dim // objects)  # per object
        if target == "oracle":  # z = the standardised state; nothing but the predictor learns
            # (the parts above are still built and dropped: they draw from the seeded RNG before
            # the predictor, so its initialisation is the one the committed oracle runs had)
            enc, proj, embed_dim = StateIdentity(obs_size), Standardizer(obs_size), obs_size
        p = predictor
        self.model = WorldModel(
            enc,
            proj,
            Predictor(
                embed_dim,
                action_dim,
                history,
                window,
                p.width,
                p.depth,
                p.heads,
                p.head_dim,
                p.mlp_dim,
                p.dropout,
                objects,
            ),
        )
        self.sigreg = SIGReg(num_directions) if regularizer == "sigreg" else None
        if target == "ema":
            self.target_encoder = copy.deepcopy(
                torch.nn.ModuleDict({"encoder": enc, "projector": self.model.projector})
            )
            self.target_encoder.requires_grad_(False)
        if target == "frozen":
            self.model.encoder.requires_grad_(False)
            self.model.projector.requires_grad_(False)

    # -- the one step shared by train, val and test ---------------------------------------------
    def model_step(self, batch: dict[str, Tensor], stage: str) -> dict[str, Tensor]:
        obs, actions = batch["obs"], batch["actions"]  # (B, L, ...), (B, L, A)
        z = self.model.encode(obs)  # (B, L, D)
        pred = self.model.predict(z[:, :-1], actions[:, :-1])  # (B, L-1, D)
        if self.hparams.target == "ema":
            target = self.ema_embed(obs)
        elif self.hparams.target == "stopgrad":
            target = z.detach()
        else:
            target = z
        assert pred.shape == target[:, 1:].shape, (pred.shape, target.shape)
        losses = {"pred_loss": F.mse_loss(pred, target[:, 1:])}
        zt = rearrange(z, "b t d -> t b d")  # (L, B, D)
        if self.hparams.regularizer == "sigreg":
            step = self.global_step if stage == "train" else 0  # fixed directions for val/test
            losses["reg_loss"] = self.sigreg(zt, step=step)
        elif self.hparams.regularizer == "vicreg":
            losses["reg_loss"] = vicreg(zt)
        else:
            losses["reg_loss"] = torch.zeros((), device=z.device)
        losses["loss"] = losses["pred_loss"] + self.hparams.lam * losses["reg_loss"]
        losses["z_std"] = embedding_std(z)
        losses["z_rank"] = effective_rank(z)
        return losses

    @torch.no_grad()
    def ema_embed(self, obs: Tensor) -> Tensor:  # (B, L, ...)
        t = self.target_encoder
        z = t["projector"](t["encoder"](obs.flatten(0, 1))).flatten(1)  # (B*L, D)
        return rearrange(z, "(b l) d -> b l d", b=obs.shape[0])

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
                f"non-finite loss at step {self.global_step}{where}; "
                "training stopped, the last good checkpoint is kept"
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
                f"non-finite gradient at step {self.global_step}; "
                "training stopped, the last good checkpoint is kept"
            )

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._log(self.model_step(batch, "val"), "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._log(self.model_step(batch, "test"), "test")

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.hparams.target == "ema":
            m = self.hparams.ema_momentum
            online = [self.model.encoder, self.model.projector]
            targets = [self.target_encoder["encoder"], self.target_encoder["projector"]]
            with torch.no_grad():
                for src, dst in zip(online, targets, strict=True):
                    for ps, pd in zip(src.parameters(), dst.parameters(), strict=True):
                        pd.lerp_(ps, 1 - m)
                    for bs, bd in zip(src.buffers(), dst.buffers(), strict=True):
                        bd.copy_(bs)

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
