"""src/data/split_record.py: the fingerprint of own data files, what it tells apart (appended, removed,
reordered, changed sequences), and the check every reader of a trained model's data runs through
src.data.pipeline.evaluation_windows: a file whose split is not the split of record is one DataError line,
``eval_split all`` says how many of its sequences were trained on, and a model recording no fingerprint
still works (with a note); train.py --resume refuses changed data the same way. Tiny uint8 files of 20
sequences of 6 frames of 8x8; no MindSpore."""
import json

import numpy as np
import pytest

from src.config import load_config
from src.data.pipeline import TrainingData, evaluation_windows
from src.data.sequences import SequenceFile, open_sequences
from src.data.split_record import (MIN_ROWS, SAMPLE_BYTES, TrainedOn, check_resumed_data, describe_change,
                                   every_window_statement, file_fingerprint, sampled_rows)
from src.errors import DataError
from tests.data_files import data_error_message, window_location

T_IN, T_OUT = 3, 3
MODEL = "run/ckpt/last.ckpt"


def _frames(n, seed):
    """(N, 6, 1, 8, 8) uint8 of independent random values: every sequence differs from every other."""
    return np.random.default_rng(seed).integers(0, 256, (n, T_IN + T_OUT, 1, 8, 8), dtype=np.uint8)


def _save(tmp_path, name, array):
    path = str(tmp_path / name)
    np.save(path, array, allow_pickle=False)
    return path


def _config(path, **keys):
    return load_config(dataset="sequences", data_path=str(path), input_frames=T_IN, output_frames=T_OUT,
                       arch="paper", patch_size=4, **keys)


def _trained_on(path, **keys):
    """What train.py would store for ``path`` (its TrainingData.record, through JSON as in a checkpoint)."""
    return TrainedOn(json.loads(json.dumps(TrainingData(_config(path, **keys)).record)), MODEL)


@pytest.fixture
def original(tmp_path):
    """(path of a 20-sequence file, its frames, what a model trained on it records)."""
    frames = _frames(20, seed=0)
    path = tmp_path / "a.npy"
    np.save(path, frames)
    return path, frames, _trained_on(path)


def _test_split(trained):
    return ", ".join(map(str, trained.split["test"]))


# ---------------------------------------------------------------- the fingerprint

def test_a_small_sequence_is_read_whole_and_a_large_one_sampled_within_the_budget():
    frames, rows = sampled_rows(6, 8, row_bytes=8)  # 48 rows of 8 bytes: under the budget
    assert list(frames * 8 + rows) == list(range(48))
    frames, rows = sampled_rows(20, 480, row_bytes=480 * 4)  # 480x480 float32: rows of 1920 bytes
    assert len(frames) == MIN_ROWS and len(set(frames.tolist())) == MIN_ROWS  # spread over the frames
    assert rows.min() > 0 and rows.max() < 479  # segment centres: not the (often empty) edges
    frames, rows = sampled_rows(20, 64, row_bytes=64)  # Moving MNIST: 64-byte rows
    assert len(frames) == SAMPLE_BYTES // 64 and len(set(zip(frames.tolist(), rows.tolist()))) == len(frames)


def test_the_fingerprint_is_the_same_in_every_layout_and_byte_order(tmp_path):
    frames = _frames(5, seed=1)  # (N, T, 1, H, W)
    reference = file_fingerprint(SequenceFile(_save(tmp_path, "ntchw.npy", frames), "NTCHW"))
    stored = {"NTHWC": np.moveaxis(frames, 2, -1), "NTHW": frames[:, :, 0],
              "TNHW": frames[:, :, 0].transpose(1, 0, 2, 3)}
    for layout, array in stored.items():
        path = _save(tmp_path, f"{layout}.npy", np.ascontiguousarray(array))
        assert file_fingerprint(SequenceFile(path, layout)) == reference, layout
    np.savez(tmp_path / "f.npz", frames=frames)
    assert file_fingerprint(SequenceFile(str(tmp_path / "f.npz"), "NTCHW")) == reference
    wide = frames.astype(np.uint16) * 257
    little = file_fingerprint(SequenceFile(_save(tmp_path, "le.npy", wide.astype("<u2")), "NTCHW"))
    assert file_fingerprint(SequenceFile(_save(tmp_path, "be.npy", wide.astype(">u2")), "NTCHW")) == little
    assert little["digests"] != reference["digests"] and little["dtype"] == "uint16"


def test_a_change_is_seen_in_sampled_rows_only(tmp_path):
    """Documented limit: a large sequence is sampled, so an edit between sampled rows goes unseen."""
    frames = np.zeros((2, 20, 1, 64, 256), np.float32)  # rows of 1 KiB: 8 of the 1280 rows of a sequence read
    before = file_fingerprint(SequenceFile(_save(tmp_path, "a.npy", frames), "NTCHW"))
    sampled_t, sampled_h = sampled_rows(20, 64, 256 * 4)
    unsampled = next((t, h) for t in range(20) for h in range(64)
                     if (t, h) not in set(zip(sampled_t.tolist(), sampled_h.tolist())))
    frames[1, unsampled[0], 0, unsampled[1], 5] = 0.5
    assert file_fingerprint(SequenceFile(_save(tmp_path, "a.npy", frames), "NTCHW")) == before
    frames[1, sampled_t[3], 0, sampled_h[3], 5] = 0.5
    after = file_fingerprint(SequenceFile(_save(tmp_path, "a.npy", frames), "NTCHW"))
    assert describe_change(before, after) == "sequence 1 changed"


def _print_of(tmp_path, frames, name="x.npy"):
    return file_fingerprint(SequenceFile(_save(tmp_path, name, frames), "NTCHW"))


def test_what_changed_is_named(tmp_path):
    frames, more = _frames(20, seed=0), _frames(5, seed=9)
    before = _print_of(tmp_path, frames)
    changed = frames.copy()
    changed[[3, 17], 2, 0, 4, 4] ^= 1  # one value of two sequences
    cases = {
        "unchanged": (frames, None),
        "appended": (np.concatenate([frames, more]), "5 appended after them"),
        "cut": (frames[:15], "the last 5 removed"),
        "removed": (np.delete(frames, [4, 9], axis=0), "sequences 4, 9 removed"),
        "reordered": (frames[::-1], "the same sequences in another order"),
        "inserted": (np.concatenate([more[:2], frames]), "2 inserted among them"),
        "changed": (changed, "sequences 3, 17 changed"),
        "replaced": (np.concatenate([frames[:10], more]), "sequences 10, 11, 12, 13, 14, 15, 16, 17 and 2 more "
                                                          "changed or removed"),
        "longer": (np.concatenate([frames, frames], axis=1), "its sequences have 12 frames, they had 6"),
        "dtype": (frames.astype(np.float32) / 255, "its dtype is float32, it was uint8"),
    }
    for name, (array, expected) in cases.items():
        assert describe_change(before, _print_of(tmp_path, array)) == expected, name


# ---------------------------------------------------------------- the check of a file split by sequence

def _refused(path, trained, **keys):
    return data_error_message(evaluation_windows, _config(path, **keys), trained)


def test_an_unchanged_file_gives_the_split_of_record(original, capsys):
    path, _, trained = original
    source, described = evaluation_windows(_config(path), trained)
    assert {window_location(source, i)[0] for i in range(len(source))} == set(trained.split["test"])
    assert "not held-out" not in described and capsys.readouterr().out == ""  # no note, same description
    assert described == evaluation_windows(_config(path))[1]  # as without a model to check against


@pytest.mark.parametrize("change, expected", [
    ("appended", "has 40 sequences; run/ckpt/last.ckpt was trained on 20 (20 appended after them;"),
    ("removed", "has 18 sequences; run/ckpt/last.ckpt was trained on 20 (sequences 3, 12 removed;"),
    ("reordered", "(20 sequences in both; the same sequences in another order;"),
    ("changed", "(20 sequences in both; sequence 7 changed;"),
])
def test_a_changed_file_is_refused_in_one_line_saying_what_changed(original, change, expected):
    path, frames, trained = original
    edited = {"appended": lambda: np.concatenate([frames, _frames(20, seed=5)]),
              "removed": lambda: np.delete(frames, [3, 12], axis=0),
              "reordered": lambda: np.roll(frames, 1, axis=0),
              "changed": lambda: np.where(np.arange(20)[:, None, None, None, None] == 7, 255 - frames, frames)}
    np.save(path, edited[change]())
    message = _refused(path, trained)
    assert message.startswith(f"data file {path} ") and expected in message
    assert f"split of record: test = sequences {_test_split(trained)})" in message
    assert "use the original file, or --eval_split all" in message
    val = _refused(path, trained, eval_split="val")  # the validation split is checked the same way
    assert f"split of record: val = sequences {', '.join(map(str, trained.split['val']))})" in val


def test_another_split_seed_on_the_same_file_is_refused(original):
    path, _, trained = original
    message = _refused(path, trained, split_seed=3)
    assert "split_seed 3" in message and "(split_seed 0, fractions 0.8/0.1/0.1)" in message
    assert "omit --split_seed" in message


def test_eval_split_all_scores_a_changed_file_and_says_how_many_sequences_were_trained_on(original):
    path, frames, trained = original
    np.save(path, np.concatenate([frames, _frames(20, seed=5)]))
    source, described = evaluation_windows(_config(path, eval_split="all"), trained)
    assert len(source) == 40
    statement = "not held-out: 16 of its 40 sequences were trained on and 2 were in its validation split"
    assert described.startswith(f"every window of {path} ({statement}): 40 windows")
    fresh = path.parent / "fresh.npy"
    np.save(fresh, _frames(6, seed=6))
    _, described = evaluation_windows(_config(fresh, eval_split="all"), trained)
    assert f"none of its 6 sequences is one {MODEL} trained on" in described and "not held-out" not in described


def test_without_a_model_nothing_is_checked(original, capsys):
    path, frames, _ = original
    np.save(path, frames[:10])
    source, _ = evaluation_windows(_config(path), None)  # e.g. eval.py --baseline copy_last
    assert len(source) == 1 and capsys.readouterr().out == ""


# ---------------------------------------------------------------- models recording less

def _without_fingerprint(trained):
    record = json.loads(json.dumps(trained.record))
    del record["split"]["fingerprint"]
    return TrainedOn(record, trained.model)


def test_a_model_without_a_fingerprint_is_checked_by_count_with_a_note(original, capsys):
    path, frames, trained = original
    old = _without_fingerprint(trained)
    source, _ = evaluation_windows(_config(path), old)
    assert {window_location(source, i)[0] for i in range(len(source))} == set(trained.split["test"])
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(f"note: {MODEL} records no fingerprint of its data")
    assert "sequence count (20) only" in out
    np.save(path, np.concatenate([frames, frames[:2]]))
    assert "has 22 sequences; run/ckpt/last.ckpt was trained on 20 (split of record" in _refused(path, old)
    _, described = evaluation_windows(_config(path, eval_split="all"), old)
    assert "not held-out as far as known" in described


def test_a_model_without_a_split_record_still_evaluates_with_a_note(original, capsys):
    path, _, _ = original
    source, _ = evaluation_windows(_config(path), TrainedOn(None, MODEL))
    assert len(source) == 2
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and f"note: {MODEL} records no split of its data" in out


def test_a_model_trained_on_digits_has_no_file_to_check(original, capsys):
    path, frames, _ = original
    digits = TrainedOn({"dataset": "synthetic"}, MODEL)
    np.save(path, frames[:10])
    assert len(evaluation_windows(_config(path), digits)[0]) == 1
    _, described = evaluation_windows(_config(path, eval_split="all"), digits)
    assert described == f"every window of {path}: 10 windows of 3+3 frames" and capsys.readouterr().out == ""


# ---------------------------------------------------------------- train/val/test directories

@pytest.fixture
def split_dir(tmp_path):
    """(directory of train/val/test files of 8/3/4 sequences, what a model trained on it records)."""
    directory = tmp_path / "splits"
    directory.mkdir()
    for k, (name, count) in enumerate((("train", 8), ("val", 3), ("test", 4))):
        np.save(directory / f"{name}.npy", _frames(count, seed=10 + k))
    return directory, _trained_on(directory)


def test_a_directorys_test_and_val_files_are_checked(split_dir, capsys):
    directory, trained = split_dir
    assert set(trained.split["fingerprint"]) == {"train", "val", "test"}
    assert len(evaluation_windows(_config(directory), trained)[0]) == 4 and capsys.readouterr().out == ""
    np.save(directory / "train.npy", _frames(9, seed=20))  # the training file does not decide held-out-ness
    assert len(evaluation_windows(_config(directory), trained)[0]) == 4
    test = np.load(directory / "test.npy")
    np.save(directory / "test.npy", np.concatenate([test, _frames(2, seed=21)]))
    message = data_error_message(evaluation_windows, _config(directory), trained)
    assert f"data file {directory / 'test.npy'} has 6 sequences; {MODEL} was trained on 4 (2 appended" in message
    assert f"split of record: the test file of {directory})" in message and "--eval_split all" in message
    np.save(directory / "val.npy", _frames(3, seed=22))
    message = data_error_message(evaluation_windows, _config(directory, eval_split="val"), trained)
    assert "val.npy differs from the file" in message and "sequences 0, 1, 2 changed" in message


def test_a_directory_model_without_fingerprints_is_checked_by_count(split_dir, capsys):
    directory, trained = split_dir
    old = _without_fingerprint(trained)
    evaluation_windows(_config(directory), old)
    assert "test.npy is checked by its sequence count (4) only" in capsys.readouterr().out
    np.save(directory / "test.npy", _frames(3, seed=23))
    assert "has 3 sequences; run/ckpt/last.ckpt was trained on 4" in \
        data_error_message(evaluation_windows, _config(directory), old)


def test_a_file_for_a_directory_model_and_the_reverse_are_refused(split_dir, original):
    directory, dir_model = split_dir
    path, _, file_model = original
    message = data_error_message(evaluation_windows, _config(path), dir_model)
    assert f"directory {directory}" in message and f"data_path {path} is one file" in message
    message = data_error_message(evaluation_windows, _config(directory), file_model)
    assert f"data_path {directory} is a directory" in message and _test_split(file_model) in message
    _, described = evaluation_windows(_config(directory / "test.npy", eval_split="all"), dir_model)
    assert described.startswith(f"every window of {directory / 'test.npy'} (none of its 4 sequences")


def test_every_window_statement_counts_sequences_by_content(original, tmp_path):
    path, frames, trained = original
    train = trained.split["train"]
    mixed = np.concatenate([frames[train[:5]], _frames(3, seed=30)])
    current = file_fingerprint(SequenceFile(_save(tmp_path, "mixed.npy", mixed), "NTCHW"))
    assert every_window_statement(trained, current) == "not held-out: 5 of its 8 sequences were trained on"
    assert every_window_statement(None, current) == ""
    assert open_sequences(str(path), "NTCHW", T_IN, T_OUT).split_record["fingerprint"] == \
        trained.split["fingerprint"]


# ---------------------------------------------------------------- train.py --resume

def _resumed(path):
    """The split record train.py --resume makes of the data it reads now."""
    return TrainingData(_config(path)).record["split"]


def _resume_refused(trained, path):
    with pytest.raises(DataError) as caught:
        check_resumed_data(trained, _resumed(path))
    message = str(caught.value)
    assert "\n" not in message and message.endswith("start a new run in another --output_dir")
    return message


def test_resume_refuses_a_changed_file_and_accepts_the_same_data_at_another_path(original, tmp_path):
    path, frames, trained = original
    copy = tmp_path / "moved.npy"
    np.save(copy, frames)
    assert check_resumed_data(trained, _resumed(path)) == "" and check_resumed_data(trained, _resumed(copy)) == ""
    np.save(path, np.concatenate([frames, _frames(20, seed=5)]))
    message = _resume_refused(trained, path)
    assert message.startswith(f"data file {path} has 40 sequences; {MODEL} was trained on 20 (20 appended after them")
    assert f"split of record: test = sequences {_test_split(trained)})" in message
    np.save(path, np.roll(frames, 1, axis=0))
    assert "the same sequences in another order" in _resume_refused(trained, path)


def test_resume_checks_every_file_of_a_directory_the_training_file_too(split_dir):
    directory, trained = split_dir
    assert check_resumed_data(trained, _resumed(directory)) == ""
    train = np.load(directory / "train.npy")
    np.save(directory / "train.npy", train[:6])
    message = _resume_refused(trained, directory)
    assert message.startswith(f"data file {directory / 'train.npy'} has 6 sequences; {MODEL} was trained on 8")
    assert f"split of record: the train file of {directory})" in message


def test_resume_of_a_checkpoint_recording_less_is_checked_as_far_as_it_can_be(original, split_dir):
    path, frames, trained = original
    old = _without_fingerprint(trained)
    assert "is checked by its sequence count (20) only" in check_resumed_data(old, _resumed(path))
    np.save(path, np.concatenate([frames, frames[:2]]))
    assert "has 22 sequences; run/ckpt/last.ckpt was trained on 20 (split of record" in _resume_refused(old, path)
    assert "records no split of its data" in check_resumed_data(TrainedOn(None, MODEL), _resumed(path))
    assert check_resumed_data(TrainedOn({"dataset": "synthetic"}, MODEL), _resumed(path)) == ""
    assert check_resumed_data(trained, None) == ""  # resumed on generated digits: no file
    directory, dir_model = split_dir
    assert f"data_path {path} is one file" in _resume_refused(dir_model, path)
    assert f"data_path {directory} is a directory" in _resume_refused(trained, directory)
