"""Procedural digit glyphs, a download-free stand-in for MNIST: per class 0-9 a few stroke skeletons
(unit box, y down) are warped, affinely distorted, fitted into MNIST's 20x20 box centred at their centre
of mass and rendered anti-aliased. Everything depends only on (count, seed), so all ranks see one set.
"""
import numpy as np

MNIST_SIZE = 28
MNIST_BOX = 20  # MNIST digits are size-normalised into a 20x20 box inside the 28x28 image


def _arc(cx, cy, rx, ry, start_deg, end_deg):
    """Points on an elliptic arc; angles in degrees, 0 = right, 90 = down (image coordinates)."""
    sweep = abs(end_deg - start_deg)
    n = max(3, int(np.ceil(sweep / 25.0)) + 1)
    a = np.deg2rad(np.linspace(start_deg, end_deg, n))
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


def _line(*points):
    return np.asarray(points, dtype=np.float64)


def _bezier(p0, p1, p2, n=8):
    """Quadratic Bezier curve from p0 to p2 pulled towards p1."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    p0, p1, p2 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _skeletons():
    """{digit: [variant, ...]}, a variant being a list of strokes, a stroke an (K, 2) array."""
    return {
        0: [[_arc(0.5, 0.5, 0.3, 0.48, -90, 275)],
            [_arc(0.5, 0.5, 0.36, 0.47, -100, 265)]],
        1: [[_line((0.52, 0.0), (0.48, 1.0))],
            [_line((0.3, 0.22), (0.56, 0.0), (0.5, 1.0))],
            [_line((0.3, 0.22), (0.56, 0.0), (0.5, 1.0)), _line((0.3, 1.0), (0.72, 1.0))]],
        2: [[np.concatenate([_arc(0.5, 0.3, 0.32, 0.28, 195, 390), _line((0.12, 1.0), (0.9, 1.0))])],
            [np.concatenate([_arc(0.48, 0.28, 0.3, 0.27, 200, 400),
                             _bezier((0.72, 0.48), (0.3, 0.7), (0.1, 1.0)),
                             _bezier((0.1, 1.0), (0.35, 0.85), (0.92, 0.95))])]],
        3: [[_arc(0.47, 0.26, 0.3, 0.25, 200, 450), _arc(0.47, 0.74, 0.33, 0.26, -90, 160)],
            [np.concatenate([_arc(0.47, 0.26, 0.28, 0.25, 210, 440), _arc(0.5, 0.74, 0.32, 0.26, -100, 150)])]],
        4: [[_line((0.68, 1.0), (0.68, 0.0), (0.08, 0.68), (0.92, 0.68))],
            [_line((0.22, 0.0), (0.12, 0.6), (0.9, 0.6)), _line((0.72, 0.15), (0.7, 1.0))]],
        5: [[_line((0.85, 0.0), (0.28, 0.0), (0.22, 0.45)), _arc(0.47, 0.68, 0.32, 0.3, 230, 505)],
            [np.concatenate([_line((0.85, 0.02), (0.3, 0.0), (0.24, 0.46)), _arc(0.48, 0.7, 0.33, 0.29, 225, 500)])]],
        6: [[np.concatenate([_bezier((0.75, 0.0), (0.22, 0.2), (0.2, 0.7)), _arc(0.5, 0.72, 0.3, 0.27, 180, 540)])],
            [np.concatenate([_bezier((0.65, 0.0), (0.3, 0.3), (0.22, 0.75)), _arc(0.48, 0.75, 0.27, 0.24, 180, 530)])]],
        7: [[_line((0.08, 0.0), (0.92, 0.0), (0.42, 1.0))],
            [_line((0.08, 0.0), (0.92, 0.0), (0.42, 1.0)), _line((0.38, 0.52), (0.82, 0.5))],
            [np.concatenate([_line((0.1, 0.1), (0.9, 0.02)), _bezier((0.9, 0.02), (0.6, 0.45), (0.55, 1.0))])]],
        8: [[_arc(0.5, 0.25, 0.25, 0.24, 0, 360), _arc(0.5, 0.73, 0.3, 0.26, -90, 270)],
            [np.concatenate([_arc(0.5, 0.26, 0.26, 0.25, 90, -250), _arc(0.5, 0.74, 0.31, 0.26, -90, 270)])]],
        9: [[np.concatenate([_arc(0.5, 0.3, 0.3, 0.28, 0, -360), _line((0.8, 0.3), (0.7, 1.0))])],
            [np.concatenate([_arc(0.48, 0.28, 0.3, 0.27, 10, -350), _bezier((0.78, 0.33), (0.75, 0.7), (0.55, 1.0))])]],
    }


def _segment_table():
    """All skeletons as one (10, V_max, S_max, 2, 2) array of segment end points, plus segment and variant
    counts; padding segments are zero-length copies of the last point, so they change no geometry."""
    segs = {d: [np.concatenate([np.stack([s[:-1], s[1:]], axis=1) for s in v]) for v in variants]
            for d, variants in _skeletons().items()}
    v_max = max(len(v) for v in segs.values())
    s_max = max(len(s) for v in segs.values() for s in v)
    table = np.zeros((10, v_max, s_max, 2, 2))
    num_segments = np.zeros((10, v_max), dtype=np.int64)
    num_variants = np.array([len(segs[d]) for d in range(10)], dtype=np.int64)
    for d, variants in segs.items():
        for v in range(v_max):
            seg = variants[v % len(variants)]
            table[d, v, :len(seg)] = seg
            table[d, v, len(seg):] = seg[-1, 1]
            num_segments[d, v] = len(seg)
    return table, num_segments, num_variants


_TABLE, _NUM_SEGMENTS, _NUM_VARIANTS = _segment_table()


def digit_labels(count, seed=0):
    """Class labels of ``synthetic_digits(count, seed)``: balanced 0-9 in a seeded order."""
    rng = np.random.default_rng([seed, 0])
    return rng.permutation(np.arange(count) % 10).astype(np.int64)


def _warp(segs, rng):
    """Smooth random bending of (G, S, 2, 2) unit-box points: a low-frequency sinusoidal displacement."""
    g = len(segs)
    amp = rng.uniform(0.0, 0.05, size=(g, 1, 1, 2))
    freq = rng.uniform(0.5, 1.5, size=(g, 1, 1, 2))
    phase = rng.uniform(0.0, 2 * np.pi, size=(g, 1, 1, 2))
    other = segs[..., ::-1]  # x moves with y and y with x: a bend, not a stretch
    return segs + amp * np.sin(2 * np.pi * freq * other + phase)


def _affine(segs, rng):
    """Random rotation, slant (shear) and width change of (G, S, 2, 2) points around the box centre."""
    g = len(segs)
    angle = rng.normal(0.0, 0.12, size=g)
    shear = rng.normal(-0.12, 0.18, size=g)  # handwriting leans right more often than left
    sx = rng.uniform(0.7, 1.15, size=g)
    c, s = np.cos(angle), np.sin(angle)
    # rotation @ shear @ diag(sx, 1), written out per glyph: (G, 2, 2)
    mat = np.stack([np.stack([c * sx, c * shear - s], -1), np.stack([s * sx, s * shear + c], -1)], -2)
    return np.einsum("gij,gskj->gski", mat, segs - 0.5)


def _place(segs, pen, soft, rng, size):
    """Scale (G, S, 2, 2) segments into the MNIST box and centre their centre of mass."""
    g = len(segs)
    box = MNIST_BOX * size / MNIST_SIZE
    pts = segs.reshape(g, -1, 2)
    lo, hi = pts.min(axis=1), pts.max(axis=1)  # (G, 2)
    extent = np.maximum((hi - lo).max(axis=1), 1e-6)
    scale = (box - pen) * rng.uniform(0.85, 1.0, size=g) / extent
    segs = (segs - lo[:, None, None]) * scale[:, None, None, None]
    mid = segs.mean(axis=2)  # (G, S, 2) segment centres
    length = np.linalg.norm(segs[:, :, 1] - segs[:, :, 0], axis=-1) + 1e-9  # (G, S)
    centre = (mid * length[..., None]).sum(axis=1) / length.sum(axis=1, keepdims=True)
    target = size / 2.0 + rng.normal(0.0, 0.5, size=(g, 2))
    segs = segs + (target - centre)[:, None, None]
    # keep all ink (pen plus soft edge) at least one pixel away from the border
    reach = (pen / 2 + soft / 2)[:, None]
    pts = segs.reshape(g, -1, 2)
    lo, hi = pts.min(axis=1) - reach, pts.max(axis=1) + reach
    shift = np.maximum(1.0 - lo, 0.0) - np.maximum(hi - (size - 1.0), 0.0)
    return segs + shift[:, None, None]


def _render(segs, pen, soft, peak, size):
    """(G, S, 2, 2) segments -> (G, size, size) float32 ink in [0, 1], computed only in the square [lo, hi)
    that can receive ink, x and y in separate arrays (reductions over a length-2 axis are slow)."""
    reach = float((pen / 2 + soft).max()) + 1.0
    lo = max(int(np.floor(segs.min() - reach)), 0)
    hi = min(int(np.ceil(segs.max() + reach)), size)
    n = hi - lo
    coords = np.arange(lo, hi, dtype=np.float32) + 0.5
    px = np.tile(coords, n)[None, :, None]  # (1, P, 1) pixel centres, row-major
    py = np.repeat(coords, n)[None, :, None]
    segs = segs.astype(np.float32)
    ax, ay = segs[:, None, :, 0, 0], segs[:, None, :, 0, 1]  # (G, 1, S)
    bx, by = segs[:, None, :, 1, 0] - ax, segs[:, None, :, 1, 1] - ay
    inv_len2 = 1.0 / np.maximum(bx * bx + by * by, 1e-6)
    dx, dy = px - ax, py - ay  # (G, P, S)
    t = np.clip((dx * bx + dy * by) * inv_len2, 0.0, 1.0)
    dx -= t * bx
    dy -= t * by
    dist2 = np.add(np.square(dx, out=dx), np.square(dy, out=dy), out=dx)  # in place: (G, P, S) is large
    dist = np.sqrt(dist2.min(axis=-1))  # (G, P) distance to the nearest stroke
    half, soft = (pen / 2)[:, None].astype(np.float32), soft[:, None].astype(np.float32)
    ink = np.clip((half - dist) / soft + 0.5, 0.0, 1.0) * peak[:, None].astype(np.float32)
    out = np.zeros((len(segs), size, size), dtype=np.float32)
    out[:, lo:hi, lo:hi] = ink.reshape(-1, n, n)
    return out


def synthetic_digits(count=2000, seed=0, size=MNIST_SIZE, return_labels=False):
    """``count`` digit images (count, size, size) uint8, deterministic in (count, seed); with
    ``return_labels`` also their balanced labels (:func:`digit_labels`)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    labels = digit_labels(count, seed)
    rng = np.random.default_rng([seed, 1])
    variant = (rng.random(count) * _NUM_VARIANTS[labels]).astype(np.int64)
    segs = _TABLE[labels, variant] + rng.normal(0.0, 0.012, size=(count, 1, 1, 2))  # small nudge
    pen = rng.uniform(1.6, 3.4, size=count) * size / MNIST_SIZE
    soft = rng.uniform(0.8, 1.5, size=count)
    peak = rng.uniform(0.85, 1.0, size=count)
    segs = _place(_affine(_warp(segs, rng), rng), pen, soft, rng, size)  # (G, S_max, 2, 2) in pixels
    nseg = _NUM_SEGMENTS[labels, variant]
    images = np.empty((count, size, size), dtype=np.uint8)
    order = np.argsort(nseg, kind="stable")  # chunks of similar segment counts: less padding work
    chunk = 64  # bounds the (chunk, P, S) temporaries to a few MB
    for start in range(0, count, chunk):
        idx = order[start:start + chunk]
        s_used = int(nseg[idx].max())
        ink = _render(segs[idx, :s_used], pen[idx], soft[idx], peak[idx], size)
        images[idx] = np.rint(ink * 255.0).astype(np.uint8)
    return (images, labels) if return_labels else images
