"""Procedural digit glyphs: shape, determinism, MNIST-like placement, variety, speed."""
import time

import numpy as np

from src.data.digits import digit_labels, synthetic_digits


def test_shape_dtype_and_range():
    images = synthetic_digits(40, seed=3)
    assert images.shape == (40, 28, 28) and images.dtype == np.uint8
    assert images.max() >= 200  # strokes reach (nearly) full ink
    assert (images.reshape(40, -1).max(axis=1) > 0).all()  # no blank glyph


def test_deterministic_in_count_and_seed():
    a = synthetic_digits(30, seed=5)
    np.testing.assert_array_equal(a, synthetic_digits(30, seed=5))
    assert not np.array_equal(a, synthetic_digits(30, seed=6))


def test_labels_balanced_and_returned():
    images, labels = synthetic_digits(100, seed=2, return_labels=True)
    np.testing.assert_array_equal(labels, digit_labels(100, seed=2))
    assert np.bincount(labels, minlength=10).tolist() == [10] * 10
    assert len(images) == len(labels)


def test_mnist_like_placement():
    """Background black at the border, ink centred near the image centre within a ~20x20 box."""
    images = synthetic_digits(200, seed=0).astype(np.float64)
    assert images[:, 0, :].max() == 0 and images[:, -1, :].max() == 0
    assert images[:, :, 0].max() == 0 and images[:, :, -1].max() == 0
    grid = np.arange(28) + 0.5
    mass = images.sum(axis=(1, 2))
    cy = (images.sum(axis=2) * grid).sum(axis=1) / mass
    cx = (images.sum(axis=1) * grid).sum(axis=1) / mass
    assert np.abs(cy - 14).max() < 3 and np.abs(cx - 14).max() < 3
    rows = (images > 0).any(axis=2).sum(axis=1)  # glyph height in pixels
    assert 16 <= np.median(rows) <= 24
    ink = (images > 0).mean()
    assert 0.08 < ink < 0.35  # MNIST: about 19% of pixels are non-zero


def test_classes_differ_and_instances_vary():
    images, labels = synthetic_digits(400, seed=0, return_labels=True)
    means = np.stack([images[labels == d].mean(axis=0) for d in range(10)]).reshape(10, -1)
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert dist[~np.eye(10, dtype=bool)].min() > 100  # class templates are distinguishable
    ones = images[labels == 1].reshape(-1, 784).astype(np.float64)
    assert np.abs(ones - ones.mean(axis=0)).mean() > 5  # instances of a class are not copies


def test_other_size():
    images = synthetic_digits(10, seed=0, size=20)
    assert images.shape == (10, 20, 20) and images.max() > 0


def test_fast_enough():
    start = time.perf_counter()
    synthetic_digits(2000, seed=0)
    assert time.perf_counter() - start < 3.0
