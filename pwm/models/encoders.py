"""Frame encoders: a torchvision ViT (pixels), an MLP (the symbolic state) and a CNN over object
crops (pixels at the simulator's positions, `crops`), DESIGN 5.2.

Each maps a batch of observations to one feature vector each (the object-centric state and
crop encoders to one per object); the projector (projector.py) maps that to the embedding. The
ViT's output is the CLS token of its last layer after the final LayerNorm (torchvision's
classification head is replaced by the identity). Pixels arrive as uint8 (B, H, W, 3) and are
scaled to [-1, 1] here, so the data pipeline never holds float frames.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torchvision.models.vision_transformer import VisionTransformer


class SelfAttention(nn.Module):
    """Drop-in for the `nn.MultiheadAttention` (batch_first) of torchvision's encoder blocks.

    Same parameters under the same names (`in_proj_weight`, `in_proj_bias`, `out_proj`), so state
    dicts are unchanged, and the same function; but one packed projection viewed as (B, h, L, d)
    and `F.scaled_dot_product_attention`, instead of `F.multi_head_attention_forward`'s
    sequence-first transposes and copies (about 9% of a CPU training step of the base preset,
    experiments/results/BENCH.md).
    """

    def __init__(self, mha: nn.MultiheadAttention):
        super().__init__()
        if not mha.batch_first or mha._qkv_same_embed_dim is False or mha.in_proj_bias is None:
            raise ValueError("SelfAttention replaces a batch-first MultiheadAttention with bias")
        self.in_proj_weight, self.in_proj_bias = mha.in_proj_weight, mha.in_proj_bias
        self.out_proj, self.heads, self.dropout = mha.out_proj, mha.num_heads, mha.dropout

    def forward(self, query: Tensor, key: Tensor, value: Tensor, need_weights: bool = False):
        if key is not query or value is not query or need_weights:
            raise ValueError("SelfAttention computes self-attention without weights only")
        b, n, w = query.shape  # (B, L, W)
        qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)  # (B, L, 3W)
        q, k, v = qkv.view(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, h, L, d)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, w)), None


TOKENS = ("cls", "patches")


class ViTEncoder(nn.Module):
    """torchvision VisionTransformer over uint8 frames; returns the last-layer CLS token (B,
    width), or with `tokens="patches"` every patch's last-layer token (B, P, width), P =
    (image_size / patch_size)^2 in row-major order: the frame as P tokens for the predictor to
    attend over, as it does over the objects of the object-centric state model (issue 28: a cue
    spans a few pixels, and one CLS vector per frame kept none of it).

    Args:
        image_size: side of the square input frames.
        patch_size: side of a patch; must divide image_size.
        width: hidden dimension of the transformer.
        depth: number of transformer layers.
        heads: attention heads.
        mlp_dim: hidden dimension of each MLP block (default 4 * width).
        tokens: `cls` (one vector per frame, LeWM) or `patches` (one token per patch).
    """

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        width: int,
        depth: int,
        heads: int,
        mlp_dim: int = 0,
        tokens: str = "cls",
    ):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not divisible by patch_size {patch_size}")
        if width % heads:
            raise ValueError(f"encoder width {width} is not divisible by heads {heads}")
        if tokens not in TOKENS:
            raise ValueError(f"encoder tokens must be one of {', '.join(TOKENS)}, got {tokens!r}")
        self.tokens = tokens
        self.vit = VisionTransformer(
            image_size=image_size,
            patch_size=patch_size,
            num_layers=depth,
            num_heads=heads,
            hidden_dim=width,
            mlp_dim=mlp_dim or 4 * width,
            dropout=0.0,
            attention_dropout=0.0,
        )
        self.vit.heads = nn.Identity()
        for block in self.vit.encoder.layers:
            block.self_attention = SelfAttention(block.self_attention)
        self.out_dim = width

    def forward(self, pixels: Tensor) -> Tensor:  # (B, H, W, 3) uint8
        x = rearrange(pixels, "b h w c -> b c h w").float().div(127.5).sub(1.0)  # (B, 3, H, W)
        if self.tokens == "cls":
            return self.vit(x)  # (B, width)
        # torchvision's forward, keeping the patch tokens: embed, prepend CLS, encode (its
        # positional embedding and final LayerNorm included)
        x = self.vit._process_input(x)  # (B, P, width)
        cls = self.vit.class_token.expand(x.shape[0], -1, -1)  # (B, 1, width)
        return self.vit.encoder(torch.cat([cls, x], dim=1))[:, 1:]  # (B, P, width)


class StateEncoder(nn.Module):
    """MLP over the flat symbolic observation (per-object position, velocity, cue).

    Args:
        state_dim: F, features per frame.
        width: hidden and output dimension.
        depth: number of hidden layers.
    """

    def __init__(self, state_dim: int, width: int, depth: int = 2):
        super().__init__()
        layers, d = [], state_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.LayerNorm(width), nn.GELU()]
            d = width
        self.net = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, state: Tensor) -> Tensor:  # (B, F)
        return self.net(state.float())  # (B, width)


def object_head(objects: int, width: int, depth: int) -> tuple[nn.Parameter, nn.Sequential]:
    """What the object encoders (state, crops) share after their first map to `width`: a
    learned embedding of each object's identity (added; the same features of the ego and of
    agent 3 must not encode alike), then LayerNorm, GELU and `depth` - 1 more (Linear,
    LayerNorm, GELU) layers per object. Returns (identity (k, width), layers)."""
    if depth < 1:
        raise ValueError(f"encoder depth must be >= 1, got {depth}")
    ident = nn.Parameter(torch.zeros(objects, width))
    nn.init.trunc_normal_(ident, std=0.02)
    layers = [nn.LayerNorm(width), nn.GELU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.LayerNorm(width), nn.GELU()]
    return ident, nn.Sequential(*layers)


class ObjectStateEncoder(nn.Module):
    """One shared MLP per object of the symbolic observation: (B, F) -> (B, k, width).

    The state is agent-major (each object's F / k features in a row), so it splits into k rows;
    a learned embedding of each object's identity is added after the first layer (the same
    features of the ego and of agent 3 must not encode alike). The projector then maps each
    object's feature to its part of the embedding (the object-centric model, predictor.py).

    Args:
        state_dim: F, features per frame; must be divisible by objects.
        objects: k, objects per frame.
        width: hidden and output dimension per object.
        depth: number of hidden layers (>= 1).
    """

    def __init__(self, state_dim: int, objects: int, width: int, depth: int = 2):
        super().__init__()
        if objects < 1 or state_dim % objects:
            raise ValueError(f"{objects} objects do not divide the {state_dim} state features")
        self.objects = objects
        self.first = nn.Linear(state_dim // objects, width)
        self.ident, self.net = object_head(objects, width, depth)
        self.out_dim = width

    def forward(self, state: Tensor) -> Tensor:  # (B, F)
        rows = rearrange(state.float(), "b (k f) -> b k f", k=self.objects)  # (B, k, F/k)
        return self.net(self.first(rows) + self.ident)  # (B, k, width)


def crop_side(features: int) -> int:
    """The crop side C of one object's row of the `crops` observation (2 + 3 C^2 features: its
    position, then its crop's pixels), or 0 if `features` is no such row."""
    c = math.isqrt(max(features - 2, 0) // 3)
    return c if c >= 1 and 2 + 3 * c * c == features else 0


class CropEncoder(nn.Module):
    """Object tokens from pixels: one token per agent from its crop (the `crops` observation,
    data_gen/render.crop_observation: per agent its position and the C x C pixels around it).

    (B, F) -> (B, k, width). Each agent's crop (pixel values 0..255 as float32, scaled to
    [-1, 1] here as the ViT does) goes through one shared small CNN (3x3 convolutions of stride
    2 and `width` channels down to 2 x 2 or less, then flattened and mapped to `width`); its
    position (x, y) is added through a linear map, as a ViT adds a patch's position embedding,
    and an embedding of the agent's index as the object-centric state encoder does; then
    LayerNorm, GELU and `depth` - 1 more (Linear, LayerNorm, GELU) layers per token (the CNN's
    final linear map is the first of `depth`, as the state encoder's first layer is). Which
    pixels an agent's token sees comes from the simulator's positions (PLATO's oracle masks);
    what they show is learned end to end.

    Args:
        obs_size: F, features per frame: k rows of 2 + 3 C^2.
        objects: k, agents per frame.
        width: channels of the CNN and the token's dimension.
        depth: hidden layers of the per-token MLP after the CNN (>= 1).
    """

    def __init__(self, obs_size: int, objects: int, width: int, depth: int = 2):
        super().__init__()
        if objects < 1 or obs_size % objects or not crop_side(obs_size // objects):
            raise ValueError(
                f"{obs_size} features are not {objects} crop rows of 2 + 3 C^2 (position, "
                "then a C x C RGB crop)"
            )
        self.objects, self.side = objects, crop_side(obs_size // objects)
        convs, side, chans = [], self.side, 3
        while side > 2 or not convs:  # at least one convolution
            convs += [nn.Conv2d(chans, width, 3, stride=2, padding=1), nn.GELU()]
            side, chans = (side + 1) // 2, width
        self.cnn = nn.Sequential(*convs, nn.Flatten(), nn.Linear(width * side * side, width))
        self.where = nn.Linear(2, width)
        self.ident, self.net = object_head(objects, width, depth)
        self.out_dim = width

    def forward(self, obs: Tensor) -> Tensor:  # (B, F)
        return self.layers(obs)[1]  # (B, k, width)

    def layers(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """(B, F) -> the CNN's feature of each crop and the token, each (B, k, width)."""
        rows = rearrange(obs.float(), "b (k f) -> b k f", k=self.objects)  # (B, k, 2 + 3C^2)
        img = rearrange(rows[..., 2:], "b k (h w c) -> (b k) c h w", h=self.side, w=self.side)
        feat = rearrange(self.cnn(img.div(127.5).sub(1.0)), "(b k) w -> b k w", k=self.objects)
        return feat, self.net(feat + self.where(rows[..., :2]) + self.ident)


class StateIdentity(nn.Module):
    """The flat symbolic observation itself, as float: the `oracle` ablation's encoder.

    Args:
        state_dim: F, features per frame (also the output dimension).
    """

    def __init__(self, state_dim: int):
        super().__init__()
        self.out_dim = state_dim

    def forward(self, state: Tensor) -> Tensor:  # (B, F)
        return state.float()  # (B, F)
