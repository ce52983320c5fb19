"""Frame encoders: a torchvision ViT (pixels) and an MLP (the symbolic state), DESIGN 5.2.

Both map a batch of observations to one feature vector each; the projector (projector.py) maps
that to the embedding. The ViT's output is the CLS token of its last layer after the final
LayerNorm (torchvision's classification head is replaced by the identity). Pixels arrive as uint8
(B, H, W, 3) and are scaled to [-1, 1] here, so the data pipeline never holds float frames.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn
from torchvision.models.vision_transformer import VisionTransformer


class ViTEncoder(nn.Module):
    """torchvision VisionTransformer over uint8 frames; returns the last-layer CLS token.

    Args:
        image_size: side of the square input frames.
        patch_size: side of a patch; must divide image_size.
        width: hidden dimension of the transformer.
        depth: number of transformer layers.
        heads: attention heads.
        mlp_dim: hidden dimension of each MLP block (default 4 * width).
    """

    def __init__(
        self, image_size: int, patch_size: int, width: int, depth: int, heads: int, mlp_dim: int = 0
    ):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not divisible by patch_size {patch_size}")
        if width % heads:
            raise ValueError(f"encoder width {width} is not divisible by heads {heads}")
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
        self.out_dim = width

    def forward(self, pixels: Tensor) -> Tensor:  # (B, H, W, 3) uint8
        x = rearrange(pixels, "b h w c -> b c h w").float().div(127.5).sub(1.0)  # (B, 3, H, W)
        return self.vit(x)  # (B, width)


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
