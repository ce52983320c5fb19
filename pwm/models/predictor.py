"""Action-conditioned causal transformer predictor with AdaLN-zero (DESIGN 5.2).

Position t attends to positions t-H+1..t (a causal mask limited to the last `history` frames) and
is conditioned on the action a_t taken at t; it outputs the prediction of z_{t+1}. With the
default window of H + 1 frames (LeWM's setup) the mask is plain causal attention, and the
prediction of z_{t+1} uses exactly the H frames up to t, as the surprise probes do. Longer
training chunks are allowed; stacked layers then reach (H - 1) * depth + 1 frames back. Every next
step of a window is predicted in one pass. Conditioning is AdaLN-zero (DiT): per block, a linear
map of the action embedding gives shift, scale and gate for the attention and MLP branches,
zero-initialised so each block starts as the identity. With zero action dimensions the
conditioning vector is a learned constant. The output goes through the predictor's own projector.

Object-centric variant (`objects` k > 1): the embedding of a frame is k object embeddings of
D / k each, concatenated (encoders.ObjectStateEncoder, or the oracle's standardised state, which
is agent-major). Each becomes a token (a shared linear map, plus a learned embedding of the
object's identity and of its time step), and attention runs over all k tokens of the last H
frames: token (t, i) attends to (t', j) for every j and t - H < t' <= t, so "the agent next to
me, and what it did to me a round ago" is one attention step instead of a function of the whole
flat vector. Every token of step t is conditioned on the action a_t; the output projector maps
each token back to its object's D / k features. With k = 1 it is the one-token-per-frame model.

With `variance` the output projector gives every feature a log-variance too (the prediction is a
diagonal Gaussian over z_{t+1}, `prediction: gaussian`, losses/prediction.py): `forward(...,
logvar=True)` returns (mean, log-variance), each (B, T, D); the log-variance is squashed into
[-LOGVAR_MAX, LOGVAR_MAX] (a soft clamp: no feature's weight in the likelihood can run away).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from pwm.models.projector import Projector

LOGVAR_MAX = 8.0  # log-variances live in [-8, 8]: variances from 3e-4 to 3e3


def sliding_causal_mask(T: int, history: int, device=None) -> Tensor:
    """(T, T) bool, True where query i may attend key j: j <= i and i - j < history."""
    i = torch.arange(T, device=device)
    d = i[:, None] - i[None, :]  # (T, T)
    return (d >= 0) & (d < history)


def object_causal_mask(T: int, objects: int, history: int, device=None) -> Tensor:
    """(T k, T k) bool over tokens ordered (t, object): the frame mask, shared by all objects."""
    mask = sliding_causal_mask(T, history, device)  # (T, T)
    return mask.repeat_interleave(objects, 0).repeat_interleave(objects, 1)  # (T k, T k)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale) + shift


class Attention(nn.Module):
    def __init__(self, width: int, heads: int, head_dim: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(width, 3 * heads * head_dim)
        self.out = nn.Linear(heads * head_dim, width)

    def forward(self, x: Tensor, mask: Tensor, queries: int | None = None) -> Tensor:
        """x (B, T, W) -> (B, T, W); with `queries` q, only the last q positions ask (B, q, W)."""
        q, k, v = rearrange(self.qkv(x), "b t (n h d) -> n b h t d", n=3, h=self.heads)
        if queries is not None:  # keys and values from every position, queries from the last
            q, mask = q[:, :, -queries:], mask[-queries:]
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, h, T, d)
        return self.out(rearrange(y, "b h t d -> b t (h d)"))  # (B, T, W)


class AdaLNZeroBlock(nn.Module):
    """Pre-norm transformer block whose norms and residual gates are set by the condition."""

    def __init__(self, width: int, heads: int, head_dim: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False)
        self.attn = Attention(width, heads, head_dim, dropout)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False)
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, width)
        )
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: Tensor, cond: Tensor, mask: Tensor, last: bool = False) -> Tensor:
        """x (B, T k, W), cond (B, T, W) -> (B, T k, W); with `last` only the last frame's k
        tokens (B, k, W): all a window's prediction of its next frame needs from a last block.
        """
        B, Tk, W = x.shape
        k = Tk // cond.shape[1]  # tokens per frame: each frame's condition is shared by its k
        mod = self.ada(cond)[:, :, None]  # (B, T, 1, 6W): mapped once per frame
        s1, c1, g1, s2, c2, g2 = mod.chunk(6, dim=-1)  # 6 x (B, T, 1, W)
        h = modulate(self.norm1(x).view(B, -1, k, W), s1, c1).view(B, Tk, W)
        a = self.attn(h, mask, k if last else None).view(B, -1, k, W)  # (B, T | 1, k, W)
        x = x.view(B, -1, k, W)  # (B, T, k, W)
        if last:  # the last frame's tokens and conditions only
            x, g1, s2, c2, g2 = x[:, -1:], g1[:, -1:], s2[:, -1:], c2[:, -1:], g2[:, -1:]
        x = x + g1 * a
        x = x + g2 * self.mlp(modulate(self.norm2(x), s2, c2))
        return x.view(B, -1, W)  # (B, T k | k, W)


class Predictor(nn.Module):
    """Causal AdaLN-zero transformer: (z (B, T, D), actions (B, T, A)) -> next embeddings (B, T, D).

    Args:
        embed_dim: D, the embedding dimension (input and output).
        action_dim: A, per-step action features (0 allowed).
        history: H, how many past frames a position attends to (itself included).
        max_len: longest window the positional embedding covers.
        width: transformer width.
        depth: number of blocks.
        heads: attention heads.
        head_dim: dimension per head (LeWM uses 64 with 16 heads over a 192-d stream).
        mlp_dim: MLP hidden size.
        dropout: dropout in attention and MLP.
        objects: k, object tokens per frame (1: the whole embedding is one token); must divide
            embed_dim.
        variance: also predict a log-variance per feature (a Gaussian prediction).
    """

    def __init__(
        self,
        embed_dim: int,
        action_dim: int,
        history: int,
        max_len: int,
        width: int,
        depth: int,
        heads: int,
        head_dim: int,
        mlp_dim: int,
        dropout: float = 0.1,
        objects: int = 1,
        variance: bool = False,
    ):
        super().__init__()
        if history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        if objects < 1 or embed_dim % objects:
            raise ValueError(f"objects must be >= 1 and divide embed_dim {embed_dim}: {objects}")
        self.history, self.action_dim, self.objects = history, action_dim, objects
        self.variance = variance
        self.inp = nn.Linear(embed_dim // objects, width)
        self.pos = nn.Parameter(torch.zeros(1, max_len, width))  # time step embedding
        nn.init.trunc_normal_(self.pos, std=0.02)
        if action_dim > 0:
            self.action = nn.Sequential(
                nn.Linear(action_dim, width), nn.SiLU(), nn.Linear(width, width)
            )
        else:
            self.cond = nn.Parameter(torch.zeros(1, 1, width))
        if objects > 1:  # object identity embedding
            self.ident = nn.Parameter(torch.zeros(1, 1, objects, width))
            nn.init.trunc_normal_(self.ident, std=0.02)
        self.blocks = nn.ModuleList(
            AdaLNZeroBlock(width, heads, head_dim, mlp_dim, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)
        hidden = 4 * embed_dim if embed_dim < 512 else 2048
        out = embed_dim // objects * (2 if variance else 1)  # per object token: mean (, logvar)
        self.proj = Projector(width, hidden, out)

    def forward(self, z: Tensor, actions: Tensor, last: bool = False, logvar: bool = False):
        """z (B, T, D), actions (B, T, A) -> (B, T, D), position t predicting z_{t+1}; with
        `last` only the last position's prediction (B, 1, D), the same numbers for less work
        (the last block and the projector run on the last frame's tokens only: the probes).
        With `logvar`, (mean, log-variance or None without a variance head)."""
        B, T, _ = z.shape
        if T > self.pos.shape[1]:
            raise ValueError(
                f"window of {T} frames exceeds the predictor's max_len {self.pos.shape[1]}"
            )
        k = self.objects
        tokens = rearrange(z, "b t (k d) -> b t k d", k=k)  # (B, T, k, D/k)
        x = self.inp(tokens) + self.pos[:, :T, None]  # (B, T, k, W)
        if k > 1:
            x = x + self.ident
        if self.action_dim > 0:
            cond = self.action(actions.float())  # (B, T, W)
        else:
            cond = self.cond.expand(B, T, -1)  # (B, T, W)
        x = rearrange(x, "b t k w -> b (t k) w")  # (B, T k, W); cond stays per frame
        mask = object_causal_mask(T, k, self.history, z.device)  # (T k, T k)
        for i, block in enumerate(self.blocks):
            x = block(x, cond, mask, last and i == len(self.blocks) - 1)
        out = self.proj(self.norm(x))  # (B, T k | k, D/k (x 2 with variance))
        mean, lv = out.chunk(2, dim=-1) if self.variance else (out, None)  # (B, T k | k, D/k)
        mean = rearrange(mean, "b (t k) d -> b t (k d)", k=k)  # (B, T | 1, D)
        if not logvar:
            return mean
        if lv is not None:
            lv = LOGVAR_MAX * torch.tanh(rearrange(lv, "b (t k) d -> b t (k d)", k=k) / LOGVAR_MAX)
        return mean, lv
