"""Per-frame surprise of a world model (DESIGN 4.1): s(t) = mean_d (pred_t[d] - z_t[d])^2, or,
for a model trained with a Gaussian prediction loss, the mean over d of the Gaussian negative
log-likelihood of z_t[d] (WorldModel.error: the same quantity the model was trained on).

`pred_t` is the predictor's output at the last position of the H frames before t, teacher forced
with the encoder's embeddings z_{t-H}..z_{t-1} and the actions a_{t-H}..a_{t-1} — exactly how a
training window of H + 1 frames predicts its last frame. Every frame of an episode is encoded
once; the T - H context windows are unfolded from the embeddings and predicted in batches.
Frames t < H have no surprise (NaN). The same pass returns the embeddings (the linear probes'
features), so nothing is encoded twice.

A model with a frame skip S > 1 (one step = S frames, DESIGN 5.2) sees the frames t = phase,
phase + S, ... of an episode (phase per episode: t* mod S for items, so that t* is a step; 0 for
natural episodes, whose exchange rounds start at frame 0), with the S per-frame actions from each
step's frame on as that step's action (pwm.data.datamodule.action_blocks). Its surprise and
embeddings are returned on the episode's frame axis, NaN at the frames it does not see.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from einops import rearrange
from rich.progress import Progress
from torch import Tensor

from pwm.data.format import Dataset
from pwm.models import WorldModel


@torch.no_grad()
def frame_surprise(model: WorldModel, z: Tensor, actions: Tensor, context: int) -> Tensor:
    """z (B, T, D) embeddings, actions (B, T, A) -> surprise (B, T), NaN where t < context."""
    B, T, _ = z.shape
    ctx = z[:, :-1].unfold(1, context, 1)  # (B, T-H, D, H): windows z[t-H:t] for t = H..T-1
    act = actions[:, :-1].unfold(1, context, 1)  # (B, T-H, A, H)
    ctx = rearrange(ctx, "b n d h -> (b n) h d")  # (B*(T-H), H, D)
    act = rearrange(act, "b n a h -> (b n) h a")  # (B*(T-H), H, A)
    pred, logvar = model.predict_dist(ctx, act, last=True)  # (B*(T-H), 1, D) each
    target = rearrange(z[:, context:], "b n d -> (b n) d")  # (B*(T-H), D)
    err = model.error(pred[:, 0], target, None if logvar is None else logvar[:, 0])  # (B*(T-H),)
    out = torch.full((B, T), float("nan"), device=z.device)
    out[:, context:] = rearrange(err, "(b n) -> b n", b=B)
    return out  # (B, T)


def steps(obs: Tensor, act: Tensor, frame_skip: int, phase: int) -> tuple[Tensor, Tensor, Tensor]:
    """obs (B, T, ...), act (B, T, A) -> the steps' observations (B, T', ...), action blocks
    (B, T', A S) and frames (T',): frames phase, phase + S, ..., each with the S actions from its
    frame on (zero past the end)."""
    B, T, A = act.shape
    frames = torch.arange(phase, T, frame_skip)  # (T',)
    padded = torch.cat([act, act.new_zeros(B, frame_skip, A)], dim=1)  # (B, T + S, A)
    idx = frames[:, None] + torch.arange(frame_skip)  # (T', S)
    blocks = rearrange(padded[:, idx], "b t s a -> b t (s a)")  # (B, T', S A)
    return obs[:, frames], blocks, frames


@contextmanager
def progress_bar(progress: Progress | None):
    """The given rich Progress, or a new transient one (one live display at a time)."""
    if progress is not None:
        yield progress
    else:
        with Progress(transient=True) as bar:
            yield bar


@torch.no_grad()
def run_model(
    model: WorldModel,
    dataset: Dataset,
    observation: str,
    context: int,
    action_mode: str = "recorded",
    episodes: np.ndarray | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    embeddings: bool = False,
    label: str = "surprise",
    progress: Progress | None = None,
    crop: tuple[np.ndarray, int] | None = None,
    frame_skip: int = 1,
    phase: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Surprise (E, T) float64 of the chosen episodes (default: all), and their embeddings
    (E, T, D) float32 if asked. `action_mode` `zeros` feeds zero actions (cross-world probes).

    `crop` (starts (E,), length L) reads only frames [start, start + L) of each episode, so
    (E, L) is returned: s(t) needs only frames t - H S .. t, and an event window [t*, t* + w] is
    the last w + 1 frames of the crop starting at t* - H S with L = H S + w + 1 (chance
    networks). `frame_skip` S and `phase` (E,) (the first frame of the episode seen as a step,
    default 0; counted in the episode, not the crop): see the module docstring.
    """
    episodes = np.arange(dataset.num_episodes) if episodes is None else np.asarray(episodes)
    starts, length = crop if crop is not None else (np.zeros(len(episodes), int), None)
    phase = np.zeros(len(episodes), int) if phase is None else np.asarray(phase, int)
    phase = (phase - starts) % frame_skip  # in the crop's frames
    obs_shards, act_shards = dataset.shards(observation), dataset.shards("actions")
    action_dim = model.predictor.action_dim // frame_skip  # per frame
    model = model.to(device).eval()
    surprise, embeds = [], []
    with progress_bar(progress) as bar:
        task = bar.add_task(label, total=len(episodes))
        for start in range(0, len(episodes), batch_size):
            chunk = slice(start, start + batch_size)
            where = [dataset.locate(int(e)) for e in episodes[chunk]]
            frames = [slice(a, None if length is None else a + length) for a in starts[chunk]]
            obs = np.stack([obs_shards[s][i, f] for (s, i), f in zip(where, frames, strict=True)])
            obs = torch.from_numpy(obs).to(device)  # (B, T, ...)
            if action_mode == "zeros":
                act = torch.zeros(*obs.shape[:2], action_dim, device=device)  # (B, T, A)
            else:
                act = [act_shards[s][i, f] for (s, i), f in zip(where, frames, strict=True)]
                act = torch.from_numpy(np.stack(act).astype(np.float32)).to(device)  # (B, T, A)
            if frame_skip == 1:
                z = model.encode(obs)  # (B, T, D)
                surprise.append(frame_surprise(model, z, act, context).double().cpu().numpy())
                if embeddings:
                    embeds.append(z.float().cpu().numpy())
            else:
                s_out, e_out = _skip_pass(model, obs, act, context, frame_skip, phase[chunk])
                surprise.append(s_out)
                if embeddings:
                    embeds.append(e_out)
            bar.advance(task, len(where))
        bar.remove_task(task)
    emb = np.concatenate(embeds) if embeddings else None
    return np.concatenate(surprise), emb


def _skip_pass(model: WorldModel, obs: Tensor, act: Tensor, context: int, frame_skip: int,
               phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Surprise (B, T) and embeddings (B, T, D) on the frame axis of a frame-skip model, NaN at
    the frames it does not see; episodes grouped by phase."""
    B, T = obs.shape[:2]
    surprise, embeds = np.full((B, T), np.nan), None
    for ph in np.unique(phase):
        rows = torch.from_numpy(np.flatnonzero(phase == ph))
        o, a, frames = steps(obs[rows], act[rows], frame_skip, int(ph))  # (b, T', ...)
        z = model.encode(o)  # (b, T', D)
        if embeds is None:
            embeds = np.full((B, T, z.shape[-1]), np.nan, np.float32)
        s = frame_surprise(model, z, a, context).double().cpu().numpy()  # (b, T')
        surprise[rows.numpy()[:, None], frames.numpy()[None]] = s
        embeds[rows.numpy()[:, None], frames.numpy()[None]] = z.float().cpu().numpy()
    return surprise, embeds
