"""The performance rewrites of Polis's movement and of the renderer (issue 8) changed no byte.

- Polis dynamics: the digests below were computed with the code as it was before the rewrite
  (batch-first movement, `np.linalg.norm` witnesses) on the same seeds. A change to the world's
  laws must update them on purpose; a speed-up must not.
- Renderer: the patch-based renderer is compared bit for bit with the renderer written out
  plainly below (every pixel of every frame, one frame at a time, the same float32 formulas).
"""

import hashlib

import numpy as np
import pytest

from data_gen import polis
from data_gen.polis import _sum_axis1
from data_gen.polis_config import PolisConfig
from data_gen.render import (
    BACKGROUND,
    CUE_NONE,
    CUE_OFFSETS,
    LINK_COLOR,
    PALETTE,
    render,
    ring_radii,
)


def digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize(
    "config, expected",
    [
        (PolisConfig(frames=40, image_size=0), "0dd220f17ccec899"),
        (
            PolisConfig(n_agents=12, frames=30, image_size=0, population="hobbesian"),
            "d078111c26d6a93d",
        ),
        (
            PolisConfig(
                n_agents=3,
                frames=30,
                image_size=0,
                population="mixture",
                hobbesian_fraction=0.5,
                round_len=3,
            ),
            "db4247d278f6bae6",
        ),
    ],
)
def test_polis_dynamics_are_byte_identical_to_the_reference(config, expected):
    assert digest(polis.simulate(config, np.random.default_rng(7), 6)) == expected


def reference_frame(centres, r_px, size, colors, cues, links) -> np.ndarray:
    """One frame, every pixel: centres (N, 2) in pixels, colors (N, 3), cues (N,), links (N,)."""
    img = np.empty((size, size, 3), dtype=np.float32)
    img[:] = BACKGROUND.astype(np.float32)
    grid = np.arange(size, dtype=np.float32)
    px, py = grid[None, :], grid[:, None]  # (1, S), (S, 1)
    cover = np.zeros((size, size), dtype=np.float32)
    width, cf = max(1.0, 0.3 * r_px), centres.astype(np.float32)
    for i, j in enumerate(links):  # grey lines, union of coverages by max
        if j < 0:
            continue
        a, ab = cf[i], cf[j] - cf[i]
        t = np.clip(((px - a[0]) * ab[0] + (py - a[1]) * ab[1]) / max((ab**2).sum(), 1e-12), 0, 1)
        dist = np.sqrt((px - (a[0] + t * ab[0])) ** 2 + (py - (a[1] + t * ab[1])) ** 2)
        cover = np.maximum(cover, np.clip(width / 2 - dist + 0.5, 0.0, 1.0))
    img = img + cover[..., None] * (LINK_COLOR.astype(np.float32) - img)
    covered, kind = cover > 0, np.zeros((size, size), dtype=np.int8)
    r_in, r_out = ring_radii(r_px)
    for i, (x, y) in enumerate(centres):  # discs in index order, then cue rings
        dx = (np.arange(size) - x).astype(np.float32)
        dy = (np.arange(size) - y).astype(np.float32)
        dist = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)  # (S, S)
        alpha = np.clip(r_px - dist + 0.5, 0.0, 1.0).astype(np.float32)
        img = img + alpha[..., None] * (colors[i].astype(np.float32) - img)
        covered |= alpha > 0
        if cues[i] != CUE_NONE:
            kind[(dist >= r_in) & (dist < r_out)] = cues[i]
    kind[covered] = CUE_NONE
    frame = np.floor(img + 0.5).astype(np.int16) + CUE_OFFSETS[kind]
    return np.clip(frame, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [16, 32, 64, 96])
def test_render_equals_the_plain_per_pixel_renderer(size):
    rng = np.random.default_rng(size)
    frames, n, radius = 40, 7, 0.06
    pos = rng.uniform(-0.2, 1.2, (frames, n, 2))  # some discs off screen, long links
    pos[::3, 1] = pos[::3, 0] + 0.1  # touching pairs
    cues = rng.integers(0, 3, (frames, n)).astype(np.int8)
    links = np.where(rng.random((frames, n)) < 0.4, rng.integers(0, n, (frames, n)), -1)
    colors = rng.integers(0, 256, (frames, n, 3)).astype(np.uint8)
    colors[::2] = PALETTE[:n]
    fast = render(pos, radius, size, colors, cues, links)
    for f in range(frames):
        ref = reference_frame(
            pos[f] * size - 0.5, radius * size, size, colors[f], cues[f], links[f]
        )
        assert np.array_equal(fast[f], ref), f"frame {f} differs at {size} px"


@pytest.mark.parametrize("n", [1, 2, 6, 8, 9, 12, 17])
def test_batch_last_sum_adds_in_numpys_order(n):
    """_sum_axis1 on (N, M, B) gives the bits of numpy's .sum(-1) on the (N, B, M) layout."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((5, 64, n)) * 10.0 ** rng.integers(-4, 4, (5, 64, n))).astype(
        np.float32
    )
    x[rng.random(x.shape) < 0.2] = -0.0
    batch_last = np.ascontiguousarray(x.transpose(0, 2, 1))  # (5, n, 64)
    assert _sum_axis1(batch_last).tobytes() == x.sum(-1).tobytes()


def test_probe_steps_match_the_training_windows_action_blocks():
    import torch

    from pwm.data.datamodule import action_blocks
    from pwm.probes.surprise import steps

    obs = torch.arange(2 * 11 * 3, dtype=torch.float32).reshape(2, 11, 3)  # (B, T, F)
    act = torch.arange(2 * 11 * 2, dtype=torch.float32).reshape(2, 11, 2)  # (B, T, A)
    o, a, frames = steps(obs, act, frame_skip=4, phase=1)
    assert frames.tolist() == [1, 5, 9] and o.shape == (2, 3, 3) and a.shape == (2, 3, 8)
    torch.testing.assert_close(o, obs[:, [1, 5, 9]])
    want = action_blocks(act[1].numpy(), frames.numpy(), 4)  # the datamodule's blocks
    np.testing.assert_array_equal(a[1].numpy(), want)
