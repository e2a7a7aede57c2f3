"""Input pipeline: digit splits, per-rank training batches, resume, sharding, batching, held-out sets."""
import hashlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from src.data.digits import synthetic_digits
from tests.data_files import build_train_dataset, write_idx_images
from src.data.moving_mnist import MovingMNIST
from src.data.pipeline import (COLUMNS, RankBatches, global_index, generated_test_source,
                               iterate_batches, load_digits, read_batch, train_source, validation_source)
from src.errors import DataError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _batches(dataset):
    """All batches of a MindSpore dataset as a list of {column: numpy array}."""
    return list(dataset.create_dict_iterator(output_numpy=True, num_epochs=1))


@pytest.fixture(scope="module")
def small_digits():
    return synthetic_digits(50, seed=9)


def test_synthetic_splits(tiny_cfg):
    train, val = load_digits(tiny_cfg, "train"), load_digits(tiny_cfg, "val")
    assert train.shape == (2000, 28, 28) and val.shape == (500, 28, 28)
    assert train.dtype == np.uint8 and val.dtype == np.uint8
    assert not np.array_equal(train[:500], val)  # validation glyphs are other instances
    with pytest.raises(ValueError):
        load_digits(tiny_cfg, "test")


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"])
def test_mnist_splits(tmp_path, tiny_cfg, name):
    images = np.random.default_rng(0).integers(0, 256, size=(5012, 28, 28), dtype=np.uint8)
    write_idx_images(str(tmp_path / name), images)
    cfg = tiny_cfg.replace(dataset="mnist", data_path=str(tmp_path))
    train, val = load_digits(cfg, "train"), load_digits(cfg, "val")
    np.testing.assert_array_equal(train, images[:12])
    np.testing.assert_array_equal(val, images[12:])


def test_mnist_missing_is_an_error_not_a_fallback(tmp_path, tiny_cfg):
    cfg = tiny_cfg.replace(dataset="mnist", data_path=str(tmp_path))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz not found.*download.sh"):
        load_digits(cfg, "train")


def test_mnist_too_few_images(tmp_path, tiny_cfg):
    write_idx_images(str(tmp_path / "train-images-idx3-ubyte.gz"), np.zeros((100, 28, 28), np.uint8))
    cfg = tiny_cfg.replace(dataset="mnist", data_path=str(tmp_path))
    with pytest.raises(DataError, match="only 100 images"):
        load_digits(cfg, "val")


def test_global_index_mapping():
    assert [global_index(s, r, 2, 3, b) for s in range(2) for r in range(2) for b in range(3)] == list(range(12))
    batches = RankBatches(source=None, rank=1, group_size=2, batch_size=3, start_step=1, steps=4)
    assert len(batches) == 3
    assert [batches.source_indices(j).tolist() for j in range(3)] == [[9, 10, 11], [15, 16, 17], [21, 22, 23]]
    with pytest.raises(ValueError):
        RankBatches(source=None, rank=2, group_size=2, batch_size=3, start_step=0, steps=4)


def _assert_batches_are_the_items(batches, source, rank, group_size, batch_size, first_step=0):
    """Every batch equals the per-item path: source[global_index(step, rank, ...)] stacked, in slot order."""
    for step, batch in enumerate(batches, start=first_step):
        for b in range(batch_size):
            inputs, targets = source[global_index(step, rank, group_size, batch_size, b)]
            np.testing.assert_array_equal(batch["inputs"][b], inputs)  # not swapped with targets
            np.testing.assert_array_equal(batch["targets"][b], targets)


@pytest.mark.parametrize("worker_type, workers", [("thread", 1), ("thread", 2), ("process", 2)])
def test_train_batches_shapes_columns_and_content(tiny_cfg, small_digits, worker_type, workers):
    cfg = tiny_cfg.replace(worker_type=worker_type, num_workers=workers, batch_size=3, steps_per_epoch=4)
    dataset = build_train_dataset(cfg, small_digits, epoch=2)
    assert tuple(dataset.get_col_names()) == COLUMNS == ("inputs", "targets")
    batches = _batches(dataset)
    assert len(batches) == dataset.get_dataset_size() == cfg.steps_per_epoch
    for batch in batches:
        assert batch["inputs"].shape == (3, 10, 1, 32, 32) and batch["inputs"].dtype == np.float32
        assert batch["targets"].shape == (3, 10, 1, 32, 32) and batch["targets"].dtype == np.float32
    _assert_batches_are_the_items(batches, train_source(cfg, small_digits, epoch=2), 0, 1, 3)


def test_epochs_differ(tiny_cfg, small_digits):
    first = _batches(build_train_dataset(tiny_cfg, small_digits, epoch=0))[0]["inputs"]
    second = _batches(build_train_dataset(tiny_cfg, small_digits, epoch=1))[0]["inputs"]
    assert not np.array_equal(first, second)


def test_ranks_are_disjoint_and_cover_the_epoch(tiny_cfg, small_digits):
    cfg = tiny_cfg.replace(num_workers=2)
    source = train_source(cfg, small_digits, epoch=0, group_size=2)
    seen = []
    for rank in range(2):
        for step, batch in enumerate(_batches(build_train_dataset(cfg, small_digits, 0, rank=rank, group_size=2))):
            for b in range(cfg.batch_size):
                index = global_index(step, rank, 2, cfg.batch_size, b)
                np.testing.assert_array_equal(batch["inputs"][b], source[index][0])
                seen.append(index)
    assert sorted(seen) == list(range(len(source)))  # each sequence on exactly one rank


def test_resume_gives_the_remaining_batches(tiny_cfg, small_digits):
    full = _batches(build_train_dataset(tiny_cfg, small_digits, epoch=1, rank=1, group_size=2))
    resumed = _batches(build_train_dataset(tiny_cfg, small_digits, epoch=1, rank=1, group_size=2, start_step=1))
    assert len(resumed) == len(full) - 1
    source = train_source(tiny_cfg, small_digits, epoch=1, group_size=2)
    _assert_batches_are_the_items(resumed, source, 1, 2, tiny_cfg.batch_size, first_step=1)
    for a, b in zip(full[1:], resumed):
        np.testing.assert_array_equal(a["inputs"], b["inputs"])
        np.testing.assert_array_equal(a["targets"], b["targets"])
    with pytest.raises(ValueError):
        build_train_dataset(tiny_cfg, small_digits, epoch=1, start_step=tiny_cfg.steps_per_epoch)


def test_moving_mnist_shards_with_generator_dataset(small_digits):
    """MovingMNIST is a random-access source, so GeneratorDataset's own sharding works on it too."""
    import mindspore.dataset as ds  # pylint: disable=import-outside-toplevel

    source = MovingMNIST(small_digits, 8, 2, image_size=32, seed=5)
    firsts = {}
    for shard in range(2):
        dataset = ds.GeneratorDataset(source, list(COLUMNS), shuffle=False, num_shards=2, shard_id=shard)
        rows = list(dataset.create_tuple_iterator(output_numpy=True, num_epochs=1))
        assert len(rows) == 4
        firsts[shard] = [row[0] for row in rows]
    expected = [source[i][0] for i in range(8)]
    matched = []
    for shard, frames in firsts.items():
        for f in frames:
            matched.append(next(i for i, e in enumerate(expected) if np.array_equal(e, f)))
    assert sorted(matched) == list(range(8))  # disjoint shards covering the source


def test_validation_source_is_fixed(tiny_cfg):
    digits = load_digits(tiny_cfg, "val")
    source = validation_source(tiny_cfg, digits)
    assert len(source) == tiny_cfg.val_sequences and source.num_digits == tiny_cfg.num_digits_val
    other_run = validation_source(tiny_cfg.replace(seed=tiny_cfg.seed + 1), digits)  # training seed is irrelevant
    np.testing.assert_array_equal(source.sequence(3), other_run.sequence(3))
    assert source[0][0].shape == (10, 1, 32, 32)


def test_read_batch_is_the_same_for_generated_and_item_sources(small_digits):
    """The generator builds a batch at once; a plain list of items is stacked: same result."""
    source = MovingMNIST(small_digits, 9, 2, image_size=32, seed=4)
    as_items = [source[i] for i in range(len(source))]
    for indices in ([2, 7, 0], [8], np.arange(9)):
        fast, slow = read_batch(source, indices), read_batch(as_items, indices)
        for a, b in zip(fast, slow):
            assert a.shape == b.shape and a.dtype == b.dtype == np.float32
            np.testing.assert_array_equal(a, b)


def _digests(source, count):
    """SHA-256 of each of the first ``count`` sequences (inputs and targets)."""
    inputs, targets = read_batch(source, np.arange(count))
    return {hashlib.sha256(np.concatenate([x, y]).tobytes()).hexdigest() for x, y in zip(inputs, targets)}


def test_generated_evaluation_set_is_not_the_validation_set(tiny_cfg):
    """eval.py --dataset synthetic scores sequences that validation (model selection) never saw."""
    from src.evaluation import build_source

    cfg = tiny_cfg.replace(val_sequences=300, num_sequences=300)
    evaluated, data = build_source(cfg)
    assert len(evaluated) == 300 and "test_seed 20151107" in data["description"]
    validation = _digests(validation_source(cfg, load_digits(cfg, "val")), 300)
    tested = _digests(evaluated, 300)
    assert len(validation) == len(tested) == 300  # distinct sequences, so the comparison means something
    assert not validation & tested
    same_seed = _digests(generated_test_source(cfg.replace(test_seed=5, val_seed=6), load_digits(cfg, "val"), 300), 300)
    assert same_seed == _digests(validation_source(cfg.replace(val_seed=5, test_seed=6), load_digits(cfg, "val")),
                                 300)  # the digests would catch a shared seed


def test_iterate_batches(small_digits):
    source = MovingMNIST(small_digits, 7, 2, image_size=32, seed=1)
    batches = list(iterate_batches(source, 3))
    assert [b[0] for b in batches] == [0, 3, 6]
    assert [b[1].shape[0] for b in batches] == [3, 3, 1]
    assert batches[0][1].shape == (3, 10, 1, 32, 32) and batches[0][2].shape == (3, 10, 1, 32, 32)
    np.testing.assert_array_equal(batches[1][1][2], source[5][0])
    np.testing.assert_array_equal(batches[1][2][2], source[5][1])
    limited = list(iterate_batches(source, 3, limit=4))
    assert [b[1].shape[0] for b in limited] == [3, 1]


def test_mnist_file_next_to_a_given_file(tmp_path, tiny_cfg):
    """data_path may name a file (e.g. the test .npy): the MNIST file is looked up beside it."""
    images = np.zeros((5001, 28, 28), np.uint8)
    write_idx_images(str(tmp_path / "train-images-idx3-ubyte.gz"), images)
    (tmp_path / "mnist_test_seq.npy").write_bytes(b"")
    cfg = tiny_cfg.replace(dataset="mnist", data_path=str(tmp_path / "mnist_test_seq.npy"))
    assert load_digits(cfg, "train").shape == (1, 28, 28)
    missing = str(tmp_path / "nowhere")
    with pytest.raises(DataError, match=f"data_path {missing};"):
        load_digits(tiny_cfg.replace(dataset="mnist", data_path=missing), "train")


def test_test_seed_may_not_be_the_validation_or_training_seed(tiny_cfg):
    from src.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="'test_seed' must differ from 'val_seed' .*set in the command line"):
        load_config(["--test_seed", str(tiny_cfg.val_seed)])
    with pytest.raises(ConfigError, match="'test_seed' must differ from 'seed' \\(both 7\\)"):
        tiny_cfg.replace(seed=7, test_seed=7)
    assert tiny_cfg.replace(test_seed=8).test_seed == 8


def test_throughput_bench_ends_with_the_two_figures():
    bench = os.path.join(REPO, "bench", "data_throughput.py")
    run = subprocess.run([sys.executable, bench, "--image_size", "32", "--num_workers", "1", "--bench_steps", "3",
                          "--bench_repeats", "1", "--bench_workers", "thread:1"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    last = run.stdout.strip().splitlines()[-2:]
    assert re.fullmatch(r"generator: \d+ sequences/s \(1 process\)", last[0]), last
    assert re.fullmatch(r"pipeline: \d+ sequences/s \(1 workers\)", last[1]), last


def test_num_workers_above_the_usable_cores_is_lowered_with_one_note(capsys, monkeypatch):
    from src.data import pipeline

    monkeypatch.setattr(pipeline, "usable_cores", lambda: 2)
    monkeypatch.setattr(pipeline, "_lowered_workers_noted", set())
    assert pipeline.workers_for_host(1) == 1 and pipeline.workers_for_host(2) == 2
    assert capsys.readouterr().out == ""
    assert pipeline.workers_for_host(8) == 2 and pipeline.workers_for_host(8) == 2
    assert capsys.readouterr().out.count("num_workers 8 lowered to 2") == 1
