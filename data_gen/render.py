"""The shared renderer of both worlds (DESIGN 3.1): discs, action cues and exchange links.

`render(positions, radius, size, colors, cues, links)` draws a batch of frames at once: numpy
over every leading dimension (episodes, frames), a Python loop only over the N objects.

Choices:

- Geometry. Box coordinates [0, 1]^2; x maps to image columns, y to image rows (y grows
  downwards in the image). Pixel (row i, column j) has its centre at ((j + .5) / S, (i + .5) / S).
- Discs are anti-aliased: coverage `clip(R - d + 1/2, 0, 1)` (R and d in pixels), composited in
  object order (a higher index is drawn on top). Each disc is drawn in a small patch around its
  centre (gather, blend, scatter), so the cost does not grow with the image area.
- Links are a neutral grey anti-aliased line between the partners' centres, under the discs.
  `links[i] = j` and `links[j] = i` draw the same line once (union of coverages by max).
- Action cues are a ring (halo) around the disc: the pixels whose centre lies at a distance in
  [R + 1/2, R_out) from the disc's centre, R_out = R + 1/2 + max(1.5, 0.6 R), and which no disc
  covers at all. The ring is hard-edged on purpose: a cue adds an exact integer offset to those
  pixels, +CUE_OFFSET for cooperate (teal) and -CUE_OFFSET for defect (vermilion). Over the
  background the cue colours are therefore BACKGROUND +- CUE_OFFSET = (35, 117, 123) teal and
  (165, 83, 77) vermilion. CUE_OFFSET = (-65, 17, 23) solves 2126 dR + 7152 dG + 722 dB = 0
  exactly (Rec.709 luminance weights x 10^4), so both cues have the background's luminance, and
  the two offsets have the same absolute value per channel, so the same L1 and L2 distance from
  the background. Because the cue is an offset on a fixed, geometry-only set of pixels, the
  rendered frame minus the same frame rendered without cues has identical per-pixel L1, L2 and
  luminance magnitudes whatever the kinds of the cues: no pixel-difference detector can tell a
  cooperation from a defection. (Exact integer isoluminant offsets are rare; this is the
  smallest one with a teal/vermilion hue pair, found by exhaustive search; it limits the cues'
  chroma to about 24 CIELAB units, a 71-unit RGB offset. The unweighted channel sum is not
  matched, -25 vs +25 per ring pixel: no offset within the RGB range matches it together with
  the luminance.) Where two rings overlap, the higher object index owns the pixel.
- PALETTE: 12 identity colours chosen by greedy farthest-point sampling in CIELAB over an sRGB
  grid, starting from the background, the link grey and both cue colours, and excluding
  chromatic candidates within 30 degrees of hue of either cue: every pair is > 45 CIELAB dE
  apart, and every entry > 45 dE from the background, the link grey and both cues.
"""

from __future__ import annotations

import numpy as np

CUE_NONE, CUE_C, CUE_D = 0, 1, 2
BACKGROUND = np.array([100, 100, 100], dtype=np.uint8)
LINK_COLOR = np.array([150, 150, 150], dtype=np.uint8)
CUE_OFFSET = np.array([-65, 17, 23], dtype=np.int16)  # Rec.709 luminance of the offset is 0
# Per cue kind (none, C, D): offset added to a ring pixel; the colour over the background.
CUE_OFFSETS = np.stack([0 * CUE_OFFSET, CUE_OFFSET, -CUE_OFFSET])  # (3, 3) int16
CUE_RGB = (BACKGROUND.astype(np.int16) + CUE_OFFSETS).astype(np.uint8)  # (3, 3)
PALETTE = np.array(
    [
        [0, 0, 255],  # blue
        [0, 255, 0],  # green
        [255, 210, 0],  # yellow
        [255, 0, 195],  # magenta
        [0, 0, 90],  # navy
        [0, 255, 195],  # aquamarine
        [60, 120, 0],  # olive green
        [60, 150, 255],  # sky blue
        [255, 255, 180],  # cream
        [255, 165, 240],  # pink
        [150, 90, 240],  # violet
        [225, 120, 15],  # orange
    ],
    dtype=np.uint8,
)
CHUNK = 1024  # frames rendered at once (bounds memory: CHUNK * S * S * 3 float32)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB uint8 colours (..., 3) -> (..., 3), for colour-distance checks."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])  # (..., 3)
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    )


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec.709 luma of RGB values, (..., 3) -> (...), float64."""
    return np.asarray(rgb, dtype=np.float64) @ np.array([0.2126, 0.7152, 0.0722])


def ring_radii(radius_px: float) -> tuple[float, float]:
    """Inner and outer radius (pixels) of the cue ring around a disc of radius `radius_px`."""
    inner = radius_px + 0.5
    return inner, inner + max(1.5, 0.6 * radius_px)


def render(positions, radius, size, colors, cues=None, links=None) -> np.ndarray:
    """Render frames of N discs.

    positions (..., N, 2) float box coordinates; radius (box units, shared by all discs);
    colors (..., N, 3) uint8 (anything broadcastable, e.g. (N, 3)); cues (..., N) int in
    {CUE_NONE, CUE_C, CUE_D}; links (..., N) int partner index or -1. Returns (..., S, S, 3) uint8.
    """
    positions = np.asarray(positions, dtype=np.float64)
    lead, n = positions.shape[:-2], positions.shape[-2]
    if size < 1 or not radius > 0:
        raise ValueError(f"render needs size >= 1 and radius > 0, got {size}, {radius}")
    flat = positions.reshape(-1, n, 2)  # (B, N, 2)
    cols = np.broadcast_to(np.asarray(colors, dtype=np.uint8), (*lead, n, 3)).reshape(-1, n, 3)
    cue = None if cues is None else np.broadcast_to(cues, (*lead, n)).reshape(-1, n)
    link = None if links is None else np.broadcast_to(links, (*lead, n)).reshape(-1, n)
    out = np.empty((flat.shape[0], size, size, 3), dtype=np.uint8)  # (B, S, S, 3)
    for s in range(0, flat.shape[0], CHUNK):
        part = slice(s, s + CHUNK)
        out[part] = _render_flat(
            flat[part] * size - 0.5,
            radius * size,
            size,
            cols[part],
            None if cue is None else cue[part],
            None if link is None else link[part],
        )
    return out.reshape(*lead, size, size, 3)


def _render_flat(centres, r_px, size, colors, cues, links) -> np.ndarray:
    """centres (B, N, 2) in pixel coordinates (x = column, y = row) -> frames (B, S, S, 3) uint8."""
    b, n = centres.shape[:2]
    img = np.empty((b, size, size, 3), dtype=np.float32)  # (B, S, S, 3)
    img[:] = BACKGROUND
    if links is not None and (links >= 0).any():
        _draw_links(img, centres, links, max(1.0, 0.3 * r_px))
    covered = np.zeros((b, size, size), dtype=bool)  # any disc coverage > 0
    cue_kind = np.zeros((b, size, size), dtype=np.int8) if cues is not None else None
    r_in, r_out = ring_radii(r_px)
    half = int(np.ceil(r_out)) + 1
    frame = np.arange(b)[:, None, None]  # (B, 1, 1)
    for i in range(n):
        rows, cols, dist = _patch(centres[:, i], half, size)  # (B, P), (B, P), (B, P, P)
        at = (frame, rows[:, :, None], cols[:, None, :])
        alpha = np.clip(r_px - dist + 0.5, 0.0, 1.0).astype(np.float32)[..., None]  # (B, P, P, 1)
        patch = img[at]  # (B, P, P, 3)
        img[at] = patch + alpha * (colors[:, i, None, None, :].astype(np.float32) - patch)
        covered[at] |= alpha[..., 0] > 0
        if cue_kind is not None:
            ring = (dist >= r_in) & (dist < r_out) & (cues[:, i, None, None] != CUE_NONE)
            cue_kind[at] = np.where(ring, cues[:, i, None, None], cue_kind[at])
    frames = np.floor(img + 0.5).astype(np.int16)  # (B, S, S, 3)
    if cue_kind is not None:
        cue_kind[covered] = CUE_NONE
        frames += CUE_OFFSETS[cue_kind]
    return np.clip(frames, 0, 255).astype(np.uint8)


def _patch(centre, half, size):
    """Rows, columns (B, P) of a square patch around each centre (B, 2); distances (B, P, P).

    Indices are clipped to the image; a clipped duplicate gets the same distance as its original,
    so writing it twice writes the same value.
    """
    offsets = np.arange(-half, half + 2)  # (P,)
    base = np.floor(centre).astype(np.int64)  # (B, 2)
    cols = np.clip(base[:, 0, None] + offsets, 0, size - 1)  # (B, P)
    rows = np.clip(base[:, 1, None] + offsets, 0, size - 1)  # (B, P)
    dx = (cols - centre[:, 0, None]).astype(np.float32)  # (B, P)
    dy = (rows - centre[:, 1, None]).astype(np.float32)  # (B, P)
    dist = np.sqrt(dy[:, :, None] ** 2 + dx[:, None, :] ** 2)  # (B, P, P)
    return rows, cols, dist


def _draw_links(img, centres, links, width):
    """Blend a grey line of `width` pixels between linked centres, on frames that have a link."""
    has = np.nonzero((links >= 0).any(axis=1))[0]  # frames with at least one link
    size = img.shape[1]
    grid = np.arange(size, dtype=np.float32)
    px, py = grid[None, None, :], grid[None, :, None]  # (1, 1, S), (1, S, 1)
    cover = np.zeros((len(has), size, size), dtype=np.float32)  # (L, S, S)
    sub_links, sub_centres = links[has], centres[has].astype(np.float32)  # (L, N), (L, N, 2)
    rows = np.arange(len(has))
    for i in range(links.shape[1]):
        j = sub_links[:, i]
        on = j >= 0  # (L,)
        if not on.any():
            continue
        a = sub_centres[:, i]  # (L, 2)
        bpt = sub_centres[rows, np.where(on, j, i)]  # (L, 2)
        ab = bpt - a  # (L, 2)
        denom = np.maximum((ab**2).sum(-1), 1e-12)[:, None, None]  # (L, 1, 1)
        t = (
            (px - a[:, 0, None, None]) * ab[:, 0, None, None]
            + (py - a[:, 1, None, None]) * ab[:, 1, None, None]
        ) / denom
        t = np.clip(t, 0.0, 1.0)  # (L, S, S)
        dx = px - (a[:, 0, None, None] + t * ab[:, 0, None, None])
        dy = py - (a[:, 1, None, None] + t * ab[:, 1, None, None])
        alpha = np.clip(width / 2 - np.sqrt(dx**2 + dy**2) + 0.5, 0.0, 1.0)  # (L, S, S)
        cover = np.maximum(cover, alpha * on[:, None, None])
    sub = img[has]  # (L, S, S, 3)
    img[has] = sub + cover[..., None] * (LINK_COLOR.astype(np.float32) - sub)
