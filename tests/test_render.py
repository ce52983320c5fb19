"""The shared renderer (DESIGN 3.1): shapes, determinism, legibility, and cue kinds that no
pixel-difference detector can separate."""

import numpy as np
import pytest

from data_gen.render import (
    BACKGROUND,
    CUE_C,
    CUE_D,
    CUE_NONE,
    CUE_RGB,
    LINK_COLOR,
    PALETTE,
    luminance,
    render,
    srgb_to_lab,
)

REC709 = np.array([2126, 7152, 722])  # Rec.709 luminance weights x 10^4, exact in integers


def scene(rng, frames=200, n=6, r=0.06):
    """Random frames with some touching pairs, random links and at least one cued disc."""
    pos = rng.uniform(0.1, 0.9, size=(frames, n, 2))
    angle = rng.uniform(0, 2 * np.pi, frames)
    pos[:, 1] = np.clip(pos[:, 0] + 2.2 * r * np.stack([np.cos(angle), np.sin(angle)], -1), 0, 1)
    cues = rng.integers(0, 3, size=(frames, n)).astype(np.int8)
    cues[:, 0] = rng.integers(1, 3, size=frames)
    links = np.where(rng.random((frames, n)) < 0.3, rng.integers(0, n, (frames, n)), -1)
    return pos, cues, links


@pytest.mark.parametrize("size", [32, 64, 96])
def test_sizes_and_disc_colours(size):
    pos = np.array([[0.25, 0.25], [0.75, 0.5]])
    img = render(pos, 0.08, size, PALETTE[:2])
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    for (x, y), colour in zip(pos, PALETTE[:2], strict=True):
        assert (img[int(y * size), int(x * size)] == colour).all()
    assert (img[0, -1] == BACKGROUND).all()
    # x is the column, y the row
    assert (img[int(0.5 * size), int(0.75 * size)] == PALETTE[1]).all()


def test_batch_equals_frame_by_frame_and_is_deterministic():
    rng = np.random.default_rng(0)
    pos, cues, links = scene(rng, frames=12)
    pos = pos.reshape(3, 4, 6, 2)
    cues, links = cues.reshape(3, 4, 6), links.reshape(3, 4, 6)
    batch = render(pos, 0.06, 48, PALETTE[:6], cues, links)
    assert batch.shape == (3, 4, 48, 48, 3)
    for a in range(3):
        for b in range(4):
            one = render(pos[a, b], 0.06, 48, PALETTE[:6], cues[a, b], links[a, b])
            assert np.array_equal(batch[a, b], one)
    assert render(pos, 0.06, 48, PALETTE[:6], cues, links).tobytes() == batch.tobytes()


def test_per_frame_colours_change_one_disc():
    pos = np.array([[[0.3, 0.3], [0.7, 0.7]]] * 2)  # (2 frames, 2 discs, 2)
    colors = np.broadcast_to(PALETTE[:2], (2, 2, 3)).copy()
    colors[1, 1] = PALETTE[5]
    img = render(pos, 0.08, 32, colors)
    assert (img[0, 22, 22] == PALETTE[1]).all() and (img[1, 22, 22] == PALETTE[5]).all()
    assert np.array_equal(img[0, :16], img[1, :16])


def test_offscreen_disc_is_not_drawn():
    img = render(np.array([[-1.0, -1.0]]), 0.08, 32, PALETTE[:1])
    assert (img == BACKGROUND).all()


def test_cue_colours_equal_luminance_and_distance():
    bg, c, d = CUE_RGB.astype(np.int64)
    assert c @ REC709 == d @ REC709 == bg @ REC709  # exact, in integers
    assert luminance(CUE_RGB[CUE_C]) == pytest.approx(luminance(CUE_RGB[CUE_D]), abs=1e-9)
    assert np.abs(c - bg).sum() == np.abs(d - bg).sum() > 60  # L1
    assert ((c - bg) ** 2).sum() == ((d - bg) ** 2).sum()  # L2
    hue = np.degrees(np.arctan2(*srgb_to_lab(CUE_RGB[1:])[:, 2:0:-1].T)) % 360
    assert 180 < hue[0] < 220, "cooperate cue is a teal"
    assert 20 < hue[1] < 45, "defect cue is a vermilion"


@pytest.mark.parametrize("size", [32, 64, 96])
def test_pixel_difference_detector_cannot_separate_cues(size):
    """Same scene with cue kinds C<->D swapped: identical changed pixels, L1, L2, luminance."""
    rng = np.random.default_rng(size)
    pos, cues, links = scene(rng)
    swapped = np.where(cues == CUE_C, CUE_D, np.where(cues == CUE_D, CUE_C, CUE_NONE))
    plain = render(pos, 0.06, size, PALETTE[:6], None, links).astype(np.int64)
    stats = []
    for kinds in (cues, swapped):
        img = render(pos, 0.06, size, PALETTE[:6], kinds, links).astype(np.int64)
        diff = img - plain  # (F, S, S, 3)
        stats.append(
            (
                (diff != 0).any(-1),  # which pixels the cue changed (its area)
                np.abs(diff).sum((1, 2, 3)),  # per-frame L1 change
                (diff**2).sum((1, 2, 3)),  # per-frame squared L2 change
                (img @ REC709).sum((1, 2)) - (plain @ REC709).sum((1, 2)),  # luminance change
                (np.abs(diff) @ REC709).sum((1, 2)),  # absolute luminance-weighted change
            )
        )
    (area, l1, l2, lum, alum), (area2, l1b, l2b, lumb, alumb) = stats
    assert area.sum(axis=(1, 2)).min() > 0, "every frame shows a cue"
    assert np.array_equal(area, area2)
    assert np.array_equal(l1, l1b) and np.array_equal(l2, l2b)
    assert (lum == 0).all() and (lumb == 0).all()
    # a detector thresholding any of these statistics gets exactly chance: all values coincide
    assert np.array_equal(np.sort(alum), np.sort(alumb))


def test_all_c_versus_all_d_frames_have_identical_statistics():
    """Frame-level detectors (L1 / L2 change from the cue-free frame, luminance) see no kind."""
    rng = np.random.default_rng(1)
    pos, _, links = scene(rng)
    plain = render(pos, 0.06, 64, PALETTE[:6], None, links).astype(np.int64)
    stats = []
    for k in (CUE_C, CUE_D):
        img = render(pos, 0.06, 64, PALETTE[:6], np.full((200, 6), k, np.int8), links)
        diff = img.astype(np.int64) - plain
        stats.append([np.abs(diff).sum(), (diff**2).sum(), (img.astype(np.int64) @ REC709).sum()])
    assert stats[0] == stats[1]


def test_palette_is_legible():
    lab = srgb_to_lab(PALETTE)
    d = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert len(PALETTE) == 12 and d.min() > 45, "identity colours far apart (CIELAB dE)"
    others = srgb_to_lab(np.stack([BACKGROUND, LINK_COLOR, CUE_RGB[CUE_C], CUE_RGB[CUE_D]]))
    assert np.linalg.norm(lab[:, None] - others[None], axis=-1).min() > 45
    hue = lambda x: np.degrees(np.arctan2(x[..., 2], x[..., 1])) % 360  # noqa: E731
    chromatic = np.hypot(lab[:, 1], lab[:, 2]) > 15
    gap = np.abs((hue(lab)[:, None] - hue(others[2:])[None] + 180) % 360 - 180)
    assert gap[chromatic].min() > 30, "identity hues far from the cue hues"


def test_links_are_drawn_once_and_symmetric():
    pos = np.array([[0.2, 0.5], [0.8, 0.5], [0.5, 0.9]])
    none = render(pos, 0.05, 64, PALETTE[:3])
    one = render(pos, 0.05, 64, PALETTE[:3], links=np.array([1, -1, -1]))
    both = render(pos, 0.05, 64, PALETTE[:3], links=np.array([1, 0, -1]))
    assert np.array_equal(one, both)
    changed = (one != none).any(-1)
    rows = np.nonzero(changed)[0]
    assert changed.sum() > 10 and rows.min() >= 30 and rows.max() <= 33  # a horizontal line
    line = one[30:34, 32].astype(int)
    assert (line >= BACKGROUND).all() and (line <= LINK_COLOR).all() and line.max() > 120


def test_exchange_frame_change_does_not_reveal_the_cue_kind():
    """From a bare frame to the exchange frame (link + cues appear together), the change has the
    same L1 and L2 for C and D: rings never lie on link pixels, whose grey would otherwise
    combine with the cues' unequal channel sums into a kind-dependent magnitude."""
    rng = np.random.default_rng(3)
    pos, cues, links = scene(rng)
    swapped = np.where(cues == CUE_C, CUE_D, np.where(cues == CUE_D, CUE_C, CUE_NONE))
    bare = render(pos, 0.06, 32, PALETTE[:6]).astype(np.int64)
    changes = []
    for kinds in (cues, swapped):
        diff = render(pos, 0.06, 32, PALETTE[:6], kinds, links).astype(np.int64) - bare
        changes.append((np.abs(diff).sum((1, 2, 3)), (diff**2).sum((1, 2, 3))))
    assert np.array_equal(changes[0][0], changes[1][0])
    assert np.array_equal(changes[0][1], changes[1][1])
