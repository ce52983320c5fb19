"""Per-frame surprise of a world model (DESIGN 4.1): s(t) = mean_d (pred_t[d] - z_t[d])^2, or,
for a model trained with a Gaussian prediction loss, the mean over d of the Gaussian negative
log-likelihood of z_t[d] (WorldModel.error: the same quantity the model was trained on).

`pred_t` is the predictor's output at the last position of the H frames before t, teacher forced
with the encoder's embeddings z_{t-H}..z_{t-1} and the actions a_{t-H}..a_{t-1} — exactly how a
training window of H + 1 frames predicts its last frame. Frames t < H have no surprise (NaN).
The same pass returns the embeddings (the linear probes' features), so nothing is encoded twice.

A model with a frame skip S > 1 (one step = S frames, DESIGN 5.2) sees the frames t = phase,
phase + S, ... of an episode (phase per episode: t* mod S for items, so that t* is a step; 0 for
natural episodes, whose exchange rounds start at frame 0), with the S per-frame actions from each
step's frame on as that step's action (pwm.data.datamodule.action_blocks). Its surprise and
embeddings are returned on the episode's frame axis, NaN at the frames it does not see.

Cached passes (issue 33). The items of a group share their history up to t*, so most of their
frames, and many of their context windows, are the same bytes. `plan` reads the episodes once
and keeps each distinct frame (by its bytes) and each distinct context window (its H frames and
H action blocks) once; `run_plan` encodes every distinct frame once and predicts every distinct
window once, in batches of `batch_size`, and scatters the embeddings, predictions and surprise
back onto every episode. Frames and windows are the model's inputs, so a duplicate's numbers
are those of its first occurrence: the results equal a pass per episode up to the last bits of
float32 batching (tests/test_probe_cache.py). A plan depends on the data only, so every network
probed on the same episodes (the model, the random-init model, the chance networks) shares it.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange
from rich.progress import Progress
from torch import Tensor

from pwm.data.format import Dataset
from pwm.models import WorldModel

READ_EPISODES = 256  # episodes read from the dataset at a time (plan and encoding)


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


@dataclass
class Plan:
    """The distinct frames and context windows of a set of (cropped) episodes: a pass's work.

    Frame ids and window ids are on the episodes' (cropped) frame axis, (E, L), -1 where the
    model sees no frame (between a frame-skip model's steps) or predicts none (the first H
    steps). Frame u is read from episode row `source[u, 0]`, frame `source[u, 1]`; window w
    predicts from frames `windows[w]` (H ids) with action blocks `window_actions[w]`."""

    dataset: Dataset
    observation: str
    episodes: np.ndarray  # (E,) dataset episodes
    starts: np.ndarray  # (E,) first frame of each crop
    length: int  # L, frames per (cropped) episode
    frame_id: np.ndarray  # (E, L) int
    window_id: np.ndarray  # (E, L) int
    source: np.ndarray  # (U, 2) int: (episode row, frame) of each distinct frame
    windows: np.ndarray  # (W, H) int frame ids
    window_actions: np.ndarray  # (W, H, A S) float32

    @property
    def num_frames(self) -> int:
        return len(self.source)

    @property
    def num_windows(self) -> int:
        return len(self.windows)

    def read(self, rows: slice, shards: list[np.ndarray]) -> np.ndarray:
        """Episode rows `rows` of the plan from an array's shards (Dataset.shards, opened once
        per pass, not kept: a plan outlives its pass), cropped: (b, L, ...)."""
        out = []
        for e, a in zip(self.episodes[rows], self.starts[rows], strict=True):
            s, i = self.dataset.locate(int(e))
            out.append(shards[s][i, a : a + self.length])
        return np.stack(out)


def _digest(a: np.ndarray) -> bytes:
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).digest()


def plan(
    dataset: Dataset,
    observation: str,
    context: int,
    action_dim: int,
    action_mode: str = "recorded",
    episodes: np.ndarray | None = None,
    crop: tuple[np.ndarray, int] | None = None,
    frame_skip: int = 1,
    phase: np.ndarray | None = None,
    windows: bool = True,
) -> Plan:
    """The distinct frames (and, with `windows`, context windows) of the chosen episodes; the
    arguments as run_model's (`action_dim`: per frame)."""
    episodes = np.arange(dataset.num_episodes) if episodes is None else np.asarray(episodes)
    T = dataset.shape(observation)[0]
    starts, length = crop if crop is not None else (np.zeros(len(episodes), int), T)
    starts = np.asarray(starts, int)
    phase = np.zeros(len(episodes), int) if phase is None else np.asarray(phase, int)
    phase = (phase - starts) % frame_skip  # in the crop's frames
    E = len(episodes)
    frame_id = np.full((E, length), -1, np.int64)
    window_id = np.full((E, length), -1, np.int64)
    frames: dict[bytes, int] = {}
    wins: dict[bytes, int] = {}
    source, win_frames, win_actions = [], [], []
    out = Plan(dataset, observation, episodes, starts, length, frame_id, window_id,
               np.zeros((0, 2), int), np.zeros((0, context), int),
               np.zeros((0, context, action_dim * frame_skip), np.float32))  # fmt: skip
    obs_shards = dataset.shards(observation)
    act_shards = dataset.shards("actions") if action_mode != "zeros" else None
    for start in range(0, E, READ_EPISODES):
        rows = slice(start, min(start + READ_EPISODES, E))
        obs = out.read(rows, obs_shards)  # (b, L, ...)
        if act_shards is None:
            act = np.zeros((*obs.shape[:2], action_dim), np.float32)
        else:
            act = out.read(rows, act_shards).astype(np.float32)  # (b, L, A)
        for r in range(obs.shape[0]):
            row = start + r
            o, a, at = steps(torch.from_numpy(obs[r : r + 1]), torch.from_numpy(act[r : r + 1]),
                             frame_skip, int(phase[row]))  # fmt: skip
            o, a, at = o[0].numpy(), a[0].numpy(), at.numpy()  # (T', ...), (T', A S), (T',)
            ids = np.empty(len(at), np.int64)
            for j, f in enumerate(at):
                key = _digest(o[j])
                u = frames.get(key)
                if u is None:
                    u = frames[key] = len(source)
                    source.append((row, int(f)))
                ids[j] = u
            frame_id[row, at] = ids
            if not windows:
                continue
            for j in range(context, len(at)):
                ctx, blocks = ids[j - context : j], a[j - context : j]
                key = _digest(ctx) + _digest(blocks)
                w = wins.get(key)
                if w is None:
                    w = wins[key] = len(win_frames)
                    win_frames.append(ctx)
                    win_actions.append(blocks)
                window_id[row, at[j]] = w
    out.source = np.asarray(source, int).reshape(-1, 2)
    if win_frames:
        out.windows = np.stack(win_frames)
        out.window_actions = np.stack(win_actions).astype(np.float32)
    return out


@torch.no_grad()
def run_plan(
    model: WorldModel,
    p: Plan,
    batch_size: int = 256,
    device: str = "cpu",
    surprise: bool = True,
    embeddings: bool = False,
    label: str = "surprise",
    progress: Progress | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Surprise (E, L) float64 and embeddings (E, L, D) float32 (each if asked, else None) of a
    plan's episodes: every distinct frame encoded once, every distinct window predicted once."""
    model = model.to(device).eval()
    U = p.num_frames
    W = p.num_windows if surprise else 0
    z = None
    shards = p.dataset.shards(p.observation)
    with progress_bar(progress) as bar:
        task = bar.add_task(label, total=U + W)
        done = 0
        for start in range(0, len(p.episodes), READ_EPISODES):  # distinct frames, in order
            rows = slice(start, min(start + READ_EPISODES, len(p.episodes)))
            first, done = done, int(np.searchsorted(p.source[:, 0], rows.stop))
            if done == first:
                continue
            obs = p.read(rows, shards)  # (b, L, ...)
            src = p.source[first:done]
            frames = obs[src[:, 0] - start, src[:, 1]]  # (n, ...)
            for i in range(0, len(frames), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(frames[i : i + batch_size]))
                e = model.encode(x.to(device)[:, None])[:, 0]  # (b, D)
                if z is None:
                    z = torch.empty(U, e.shape[-1], dtype=e.dtype, device=device)
                z[first + i : first + i + len(e)] = e
                bar.advance(task, len(e))
        s_out = e_out = None
        if surprise:
            s_out = np.full(p.frame_id.shape, np.nan)
            rows, cols = np.nonzero(p.window_id >= 0)
            pred = logvar = None
            for i in range(0, W, batch_size):
                ctx = z[torch.from_numpy(p.windows[i : i + batch_size]).to(device)]  # (b, H, D)
                act = torch.from_numpy(p.window_actions[i : i + batch_size]).to(device)
                m, lv = model.predict_dist(ctx, act, last=True)  # (b, 1, D) each
                if pred is None:
                    pred = torch.empty(W, m.shape[-1], dtype=m.dtype, device=device)
                    logvar = None if lv is None else torch.empty_like(pred)
                pred[i : i + len(m)] = m[:, 0]
                if lv is not None:
                    logvar[i : i + len(m)] = lv[:, 0]
                bar.advance(task, len(m))
            w = torch.from_numpy(p.window_id[rows, cols]).to(device)
            t = torch.from_numpy(p.frame_id[rows, cols]).to(device)
            err = []
            for i in range(0, len(w), 65536):  # the errors, on every predicted frame
                wi, ti = w[i : i + 65536], t[i : i + 65536]
                err.append(model.error(pred[wi], z[ti], None if logvar is None else logvar[wi]))
            if err:
                s_out[rows, cols] = torch.cat(err).double().cpu().numpy()
        if embeddings:
            e_out = np.full((*p.frame_id.shape, z.shape[-1]), np.nan, np.float32)
            rows, cols = np.nonzero(p.frame_id >= 0)
            e_out[rows, cols] = z.float().cpu().numpy()[p.frame_id[rows, cols]]
        bar.remove_task(task)
    return s_out, e_out


def run_model(
    model: WorldModel,
    dataset: Dataset,
    observation: str,
    context: int,
    action_mode: str = "recorded",
    episodes: np.ndarray | None = None,
    batch_size: int = 256,
    device: str = "cpu",
    embeddings: bool = False,
    label: str = "surprise",
    progress: Progress | None = None,
    crop: tuple[np.ndarray, int] | None = None,
    frame_skip: int = 1,
    phase: np.ndarray | None = None,
    surprise: bool = True,
    cached: Plan | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Surprise (E, T) float64 of the chosen episodes (default: all), and their embeddings
    (E, T, D) float32 if asked. `action_mode` `zeros` feeds zero actions (cross-world probes).

    `crop` (starts (E,), length L) reads only frames [start, start + L) of each episode, so
    (E, L) is returned: s(t) needs only frames t - H S .. t, and an event window [t*, t* + w] is
    the last w + 1 frames of the crop starting at t* - H S with L = H S + w + 1 (chance
    networks). `frame_skip` S and `phase` (E,) (the first frame of the episode seen as a step,
    default 0; counted in the episode, not the crop): see the module docstring. `surprise`
    False skips the predictor (embeddings only; the surprise returned is None). `cached`: a
    plan of these very arguments made before (`plan`), so several networks share it.
    """
    if cached is None:
        cached = plan(dataset, observation, context, model.predictor.action_dim // frame_skip,
                      action_mode, episodes, crop, frame_skip, phase, surprise)  # fmt: skip
    return run_plan(model, cached, batch_size, device, surprise, embeddings, label, progress)
