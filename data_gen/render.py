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
  `links[i] = j` and `links[j] = i` draw the same line once (union of coverages by max). A
  line's coverage is computed only in its bounding box, so links too cost no full-frame pass.
- Action cues are a ring (halo) around the disc: the pixels whose centre lies at a distance in
  [R + 1/2, R_out) from the disc's centre, R_out = R + 1/2 + max(1.5, 0.6 R), and which no disc
  and no link covers at all (a ring pixel is always background before its offset: over a link's
  grey, the cues' unequal channel sums would let a pixel difference tell C from D). The ring is
  hard-edged on purpose: a cue adds an exact integer offset to those
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


def state_layout(n_objects: int, links: bool = False) -> list[str]:
    """The per-object features of both worlds' symbolic state, in order: what the frames draw
    (position, velocity, the two cue kinds and, with `links`, a one-hot of the object the exchange
    link is drawn to). Physics leaves the cue and link columns zero."""
    return ["x", "y", "vx", "vy", "cue_c", "cue_d"] + (
        [f"link_{j}" for j in range(n_objects)] if links else []
    )


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
CHUNK = 128  # frames rendered at once: the float image (CHUNK * S * S * 3) stays in cache


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


def crops(frames: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
    """Per object, the `size` x `size` pixels around its centre: frames (..., S, S, 3) uint8 and
    positions (..., N, 2) box coordinates -> (..., N, size, size, 3) uint8.

    The window is the one whose centre is nearest the object's centre in render()'s pixel
    coordinates (x = column, y = row); pixels beyond the frame are the background. These are the
    object crops at the simulator's positions (issue 28, as PLATO's oracle masks): which pixels
    belong to which object comes from the simulator, what they show from the renderer.
    """
    if not 1 <= size:
        raise ValueError(f"crop size must be >= 1, got {size}")
    S, n = frames.shape[-2], positions.shape[-2]
    lead = frames.shape[:-3]
    f = frames.reshape(-1, S, S, 3)
    p = np.asarray(positions, dtype=np.float64).reshape(-1, n, 2)  # (B, N, 2)
    pad = np.empty((len(f), S + 2 * size, S + 2 * size, 3), dtype=np.uint8)
    pad[:] = BACKGROUND
    pad[:, size : size + S, size : size + S] = f
    first = np.clip(np.rint(p * S - size / 2).astype(np.int64), -size, S) + size  # (B, N, 2)
    step = np.arange(size)
    cols = first[..., 0, None] + step  # (B, N, C)
    rows = first[..., 1, None] + step  # (B, N, C)
    b = np.arange(len(f))[:, None, None, None]
    out = pad[b, rows[:, :, :, None], cols[:, :, None, :]]  # (B, N, C, C, 3)
    return out.reshape(*lead, n, size, size, 3)


def crop_observation(frames: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
    """The `crops` observation: frames (..., S, S, 3) uint8, positions (..., N, 2) ->
    (..., N * (2 + 3 size^2)) float32, agent-major: per object its position (x, y, box units)
    then its crop's pixel values (0..255, row-major, RGB last; `crops`). The encoder
    (pwm/models/encoders.py CropEncoder) reads the crop as an image and the position as where
    it is, as a patch token's position embedding does for a ViT."""
    c = crops(frames, positions, size)  # (..., N, C, C, 3)
    flat = c.reshape(*c.shape[:-3], -1).astype(np.float32)  # (..., N, 3 C^2)
    per = np.concatenate([np.asarray(positions, dtype=np.float32), flat], axis=-1)
    return per.reshape(*per.shape[:-2], -1)  # (..., N * (2 + 3 C^2))


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
    """centres (B, N, 2) in pixel coordinates (x = column, y = row) -> frames (B, S, S, 3) uint8.

    Works on flat views: pixel p of frame f is row f * S * S + p of a (B * S * S, 3) image, so a
    disc's patch is one integer index array (gather, blend, scatter). Full-frame passes are kept
    to four (fill, +0.5, floor, cast); links and cue offsets touch only their own pixels.
    """
    b, n = centres.shape[:2]
    img = np.empty((b, size, size, 3), dtype=np.float32)  # (B, S, S, 3)
    img.reshape(b, -1)[:] = np.broadcast_to(BACKGROUND.astype(np.float32), (size * size, 3)).ravel()
    flat = img.reshape(-1, 3)  # (B*S*S, 3) view
    covered = np.zeros(b * size * size, dtype=bool)  # any disc or link coverage > 0
    if links is not None and (links >= 0).any():
        covered[_draw_links(flat, centres, links, max(1.0, 0.3 * r_px), size)] = True
    cue_kind = np.zeros(b * size * size, dtype=np.int8) if cues is not None else None
    r_in, r_out = ring_radii(r_px)
    disc_half = int(np.ceil(r_px + 0.5)) + 1  # every pixel with coverage > 0 is in the patch
    ring_half = int(np.ceil(r_out)) + 1  # every ring pixel is in the patch
    first = (np.arange(b) * (size * size))[:, None, None]  # (B, 1, 1) first pixel of each frame
    for i in range(n):
        rows, cols, dist = _patch(centres[:, i], disc_half, size)  # (B, P), (B, P), (B, P, P)
        at = first + rows[:, :, None] * size + cols[:, None, :]  # (B, P, P) flat pixel index
        alpha = np.clip(r_px - dist + 0.5, 0.0, 1.0).astype(np.float32)  # (B, P, P)
        patch = flat[at]  # (B, P, P, 3)
        color = colors[:, i, None, None, :].astype(np.float32)  # (B, 1, 1, 3)
        flat[at] = patch + alpha[..., None] * (color - patch)
        covered[at] |= alpha > 0
        on = np.flatnonzero(cues[:, i] != CUE_NONE) if cues is not None else ()
        if len(on):  # frames where disc i shows a cue
            rows, cols, dist = _patch(centres[on, i], ring_half, size)  # (F, Q), (F, Q), (F, Q, Q)
            ring = (dist >= r_in) & (dist < r_out)  # (F, Q, Q)
            at = first[on] + rows[:, :, None] * size + cols[:, None, :]  # (F, Q, Q)
            cue_kind[at[ring]] = np.broadcast_to(cues[on, i, None, None], ring.shape)[ring]
    np.add(img, 0.5, out=img)
    np.floor(img, out=img)  # in [0, 255]: every value is a convex blend of uint8 colours
    frames = img.astype(np.uint8)  # (B, S, S, 3)
    if cue_kind is not None:
        ringed = np.flatnonzero((cue_kind != CUE_NONE) & ~covered)  # (R,) flat pixel index
        out = frames.reshape(-1, 3)  # (B*S*S, 3) view
        shifted = out[ringed].astype(np.int16) + CUE_OFFSETS[cue_kind[ringed]]  # (R, 3)
        out[ringed] = np.clip(shifted, 0, 255).astype(np.uint8)
    return frames


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


def _draw_links(flat, centres, links, width, size):
    """Blend a grey line of `width` pixels between linked centres into `flat` (B*S*S, 3).

    Returns the flat indices of the pixels the lines cover, which cue rings must not touch.

    Each line's coverage is computed only inside its bounding box (plus a margin wider than the
    line), one patch per agent over the frames that have a link; coverages are combined by max.
    """
    has = np.nonzero((links >= 0).any(axis=1))[0]  # frames with at least one link
    cover = np.zeros(len(has) * size * size, dtype=np.float32)  # (L*S*S,)
    sub_links, sub_centres = links[has], centres[has].astype(np.float32)  # (L, N), (L, N, 2)
    rows = np.arange(len(has))
    margin = width / 2 + 2  # alpha > 0 only within width / 2 + 1/2 of the segment
    for i in range(links.shape[1]):
        j = sub_links[:, i]
        on = j >= 0  # (L,)
        if not on.any():
            continue
        a = sub_centres[:, i]  # (L, 2)
        bpt = sub_centres[rows, np.where(on, j, i)]  # (L, 2)
        ab = bpt - a  # (L, 2)
        denom = np.maximum((ab**2).sum(-1), 1e-12)  # (L,)
        f = np.flatnonzero(on)  # (F,) frames where agent i has a link
        a, ab, denom = a[f], ab[f], denom[f, None, None]  # (F, 2), (F, 2), (F, 1, 1)
        low = np.floor(np.minimum(a, a + ab) - margin).astype(np.int64)  # (F, 2) x, y
        high = np.ceil(np.maximum(a, a + ab) + margin).astype(np.int64)  # (F, 2)
        low = np.clip(low, 0, size - 1)
        extent = np.clip(high - low + 1, 1, size).max(0)  # (2,) patch width, height
        cols = np.minimum(low[:, 0, None] + np.arange(extent[0]), size - 1)  # (F, W)
        prow = np.minimum(low[:, 1, None] + np.arange(extent[1]), size - 1)  # (F, H)
        px = cols.astype(np.float32)[:, None, :]  # (F, 1, W)
        py = prow.astype(np.float32)[:, :, None]  # (F, H, 1)
        t = (
            (px - a[:, 0, None, None]) * ab[:, 0, None, None]
            + (py - a[:, 1, None, None]) * ab[:, 1, None, None]
        ) / denom
        t = np.clip(t, 0.0, 1.0)  # (F, H, W)
        dx = px - (a[:, 0, None, None] + t * ab[:, 0, None, None])
        dy = py - (a[:, 1, None, None] + t * ab[:, 1, None, None])
        alpha = np.clip(width / 2 - np.sqrt(dx**2 + dy**2) + 0.5, 0.0, 1.0)  # (F, H, W)
        at = (f * size * size)[:, None, None] + prow[:, :, None] * size + cols[:, None, :]
        cover[at] = np.maximum(cover[at], alpha)
    drawn = np.flatnonzero(cover)  # (K,) index into the linked frames' pixels
    frame, pixel = np.divmod(drawn, size * size)
    bg = BACKGROUND.astype(np.float32)
    linked = has[frame] * (size * size) + pixel  # (K,) flat pixel index
    flat[linked] = bg + cover[drawn, None] * (LINK_COLOR.astype(np.float32) - bg)
    return linked
