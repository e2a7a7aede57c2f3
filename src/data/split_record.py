"""The split of record: which own sequences a trained model held out, and the check that a data file read for
it later still holds them.

train.py stores, with the split of sequences, a fingerprint of every data file it read in the checkpoint's
metadata (``data``: src.data.pipeline.TrainingData.record); export.py copies that record into the exported
model. Every reader of a trained model's data (eval.py, eval_onnx.py, predict.py --data_path, preprocess.py)
compares the file it reads with it: a file whose split would not be the split of record (sequences appended,
removed, reordered or changed, another split_seed) is refused in one line. ``eval_split all`` scores a changed
file on purpose and says how many of its sequences the model trained on. train.py --resume refuses data that
changed since its checkpoint the same way (:func:`check_resumed_data`).

The fingerprint of a file (:func:`file_fingerprint`): its sequence count, frames per sequence, dtype and, per
sequence, a 48-bit BLAKE2b digest of about 8 KiB of its values: whole rows (every channel) at the centres of
equal segments of its frames x rows, at least 8 rows, all of them in a sequence that small. It reads about
8 KiB per sequence (80 MB for 10,000 sequences), never the whole file, and tells appended, removed,
reordered and replaced sequences apart; an edit confined to rows it does not read goes unseen.
"""
import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from typing import Optional

import numpy as np

from src.errors import DataError

SCHEME = "rows-8KiB-blake2b48"  # names the sampling and the digest: another scheme is not compared
SAMPLE_BYTES = 8 << 10  # values read per sequence
MIN_ROWS = 8
DIGEST_CHARS = 12  # 48 bits, in hex
READ_CHUNK = 256  # sequences per read
LISTED = 8  # sequence indices named in a message
NOT_HELD_OUT = "not held-out"  # in the description of windows that may hold training sequences
_ALL = f"--eval_split all to score every window of this file on purpose ({NOT_HELD_OUT})"


@dataclass(frozen=True)
class TrainedOn:
    """What a model was trained on: the data record it stores (None: it stores none) and the model file."""

    record: Optional[dict]
    model: str

    @property
    def split(self):  # the split of record, or None
        return (self.record or {}).get("split")

    @property
    def other_data(self):  # trained on generated digits (dataset mnist/synthetic): no file of sequences to check
        return (self.record or {}).get("dataset", "sequences") != "sequences"


# ---------------------------------------------------------------- the fingerprint

def sampled_rows(frames, height, row_bytes):
    """(frame indices, row indices) of the rows read from every sequence: the centres of ``count`` equal
    segments of its frames x height rows; ``count`` rows make SAMPLE_BYTES (at least MIN_ROWS, at most all)."""
    total = frames * height
    count = min(total, max(MIN_ROWS, SAMPLE_BYTES // max(int(row_bytes), 1)))
    centres = ((2 * np.arange(count, dtype=np.int64) + 1) * total) // (2 * count)  # (count,) flat row indices
    return np.divmod(centres, height)


def file_fingerprint(file):
    """The fingerprint (module docstring) of a src.data.sequences.SequenceFile."""
    row_bytes = file.channels * file.width * np.dtype(file.dtype).itemsize
    frames, rows = sampled_rows(file.num_frames, file.height, row_bytes)
    digests = []
    for start in range(0, file.num_sequences, READ_CHUNK):
        block = file.read_rows(np.arange(start, min(start + READ_CHUNK, file.num_sequences)), frames, rows)
        for values in block:  # (R, C, W): one sequence's rows, little-endian whatever the file's byte order
            data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes()
            digests.append(hashlib.blake2b(data, digest_size=DIGEST_CHARS // 2).hexdigest())
    return {"scheme": SCHEME, "num_sequences": int(file.num_sequences), "frames": int(file.num_frames),
            "dtype": file.dtype, "digests": "".join(digests)}


def _comparable(fingerprint):  # one of this scheme (a record from another version is checked by its counts)
    return isinstance(fingerprint, dict) and fingerprint.get("scheme") == SCHEME


def _digests(fingerprint):
    text = fingerprint["digests"]
    return [text[i:i + DIGEST_CHARS] for i in range(0, len(text), DIGEST_CHARS)]


def _listed(indices):
    indices = [int(i) for i in indices]
    shown = ", ".join(map(str, indices[:LISTED]))
    return shown + (f" and {len(indices) - LISTED} more" if len(indices) > LISTED else "")


def describe_change(recorded, current):
    """None when the fingerprint ``current`` is ``recorded``, else what changed: a phrase such as
    '20 appended after them', 'the same sequences in another order', 'sequences 3, 17 changed'."""
    if recorded.get("dtype") != current["dtype"]:
        return f"its dtype is {current['dtype']}, it was {recorded.get('dtype')}"
    if recorded["frames"] != current["frames"]:
        return f"its sequences have {current['frames']} frames, they had {recorded['frames']}"
    old, new = _digests(recorded), _digests(current)
    if old == new:
        return None
    n0, n1 = len(old), len(new)
    if n1 > n0 and new[:n0] == old:
        return f"{n1 - n0} appended after them"
    if n1 < n0 and new == old[:n1]:
        return f"the last {n0 - n1} removed"
    lost, gained = Counter(old) - Counter(new), Counter(new) - Counter(old)
    if not lost and not gained:
        return "the same sequences in another order"
    if not lost:
        return f"{n1 - n0} inserted among them"
    if n0 == n1:
        return f"{_sequences(i for i in range(n0) if old[i] != new[i])} changed"
    missing = [i for i, digest in enumerate(old) if digest in lost]
    return f"{_sequences(missing)} {'removed' if not gained else 'changed or removed'}"


def _sequences(indices):
    indices = list(indices)
    return f"sequence{'s' if len(indices) > 1 else ''} {_listed(indices)}"


# ---------------------------------------------------------------- the checks

def _changed(path, model, recorded, current, where, fix):
    """The one-line DataError of a changed file, or None when it is unchanged."""
    change = describe_change(recorded, current)
    if change is None:
        return None
    n0, n1 = recorded["num_sequences"], current["num_sequences"]
    head = (f"data file {path} has {n1} sequences; {model} was trained on {n0} (" if n0 != n1 else
            f"data file {path} differs from the file {model} was trained on ({n1} sequences in both; ")
    return DataError(f"{head}{change}; split of record: {where}); {fix}")


def _note_unrecorded(trained, path):
    return (f"{trained.model} records no split of its data (made before models recorded it): {path} is not "
            "checked against the data it was trained on")


def _split_of_record(split_record, split):
    """'test = sequences 3, 17' of a file's split record."""
    return f"{split} = sequences {_listed(split_record[split])}" if split in split_record else f"{split} unknown"


def _check_file_split(trained, recorded, now, split):
    path, model = now["path"], trained.model
    where = _split_of_record(recorded, split)
    fix = f"use the original file, or {_ALL}"
    note = ""
    if _comparable(recorded.get("fingerprint")):
        error = _changed(path, model, recorded["fingerprint"], now["fingerprint"], where, fix)
        if error is not None:
            raise error
    elif recorded["num_sequences"] != now["num_sequences"]:
        raise DataError(f"data file {path} has {now['num_sequences']} sequences; {model} was trained on "
                        f"{recorded['num_sequences']} (split of record: {where}); {fix}")
    else:
        note = (f"{model} records no fingerprint of its data (made before models recorded one): {path} is "
                f"checked by its sequence count ({now['num_sequences']}) only")
    if list(now[split]) != list(recorded[split]):
        fractions = "/".join(f"{f:g}" for f in recorded["fractions"])
        raise DataError(f"split_seed {now['seed']} with fractions {'/'.join(f'{f:g}' for f in now['fractions'])} "
                        f"makes the {split} split of {path} sequences {_listed(now[split])}, but the split of record "
                        f"(split_seed {recorded['seed']}, fractions {fractions}) is {where}; omit --split_seed, "
                        f"--val_fraction and --test_fraction (the model's are used), or {_ALL}")
    return note


def _check_directory_split(trained, recorded, now, split):
    path, model = now["file"], trained.model
    current = now["fingerprint"][split]
    fix = (f"use the original {split} file, or point --data_path at this file with --eval_split all to score "
           f"every window of it on purpose ({NOT_HELD_OUT})")
    where = f"the {split} file of {recorded.get('path', 'a directory')}"
    return _check_one_file(model, path, recorded.get("fingerprint", {}).get(split), current,
                           recorded.get("num_sequences", {}).get(split), where, fix)


def check_split(trained, now, split):
    """Refuse (one-line DataError) to score the ``split`` (test | val) of data whose split ``now`` is not the
    split of record of ``trained`` (None: nothing to check). ``now``: a file's split record
    (src.data.sequences.open_sequences), or {"mode": "directory", "path": the directory, "file": its ``split``
    file, "fingerprint": {split: fingerprint of that file}}. Returns a note for a model that records less
    than this check needs, else ''."""
    if trained is None or trained.other_data:
        return ""
    recorded = trained.split
    if not recorded:
        return _note_unrecorded(trained, now["path"])
    if recorded.get("mode") != now["mode"]:
        if recorded.get("mode") == "directory":
            raise DataError(f"{trained.model} was trained on the train/val/test files of the directory "
                            f"{recorded.get('path')}, but data_path {now['path']} is one file: its {split} split would "
                            f"not be the {split} file the model held out; point --data_path at a directory with that "
                            f"{split} file, or pass {_ALL}")
        raise DataError(f"{trained.model} was trained on one file split by sequence ({recorded.get('path')}), but "
                        f"data_path {now['path']} is a directory: its {split} file is not the {split} split of record "
                        f"({_split_of_record(recorded, split)}); point --data_path at the original file, or at one "
                        f"file with {_ALL}")
    if now["mode"] == "file":
        return _check_file_split(trained, recorded, now, split)
    return _check_directory_split(trained, recorded, now, split)


_RESUME_FIX = "resume with the data file of the first run, or start a new run in another --output_dir"


def _check_one_file(model, path, old, current, count, where, fix):
    """Refuse one changed data file (its fingerprint ``old`` against ``current``); a note when only its
    sequence count ``count`` is recorded; '' when it is unchanged."""
    if _comparable(old):
        error = _changed(path, model, old, current, where, fix)
        if error is not None:
            raise error
        return ""
    if count is not None and count != current["num_sequences"]:
        raise DataError(f"data file {path} has {current['num_sequences']} sequences; {model} was trained on "
                        f"{count} (split of record: {where}); {fix}")
    return (f"{model} records no fingerprint of its data (made before models recorded one): {path} is "
            f"checked by its sequence count ({current['num_sequences']}) only")


def check_resumed_data(trained, now):
    """train.py --resume: refuse (one-line DataError) own data that changed since the checkpoint ``trained``
    was written; ``now``: the split record train.py made of the data it reads now (None: not own sequences).
    A changed file moves sequences between train, val and test, so the resumed run would train on sequences
    held out so far. Returns a note for a checkpoint that records less than this check needs, else ''."""
    if now is None or trained.other_data:
        return ""
    recorded = trained.split
    if not recorded:
        return _note_unrecorded(trained, now["path"])
    if recorded.get("mode") != now["mode"]:
        was = "one file" if recorded.get("mode") == "file" else "the train/val/test files of a directory"
        raise DataError(f"{trained.model} was trained on {was} ({recorded.get('path')}), but data_path {now['path']} "
                        f"is {'one file' if now['mode'] == 'file' else 'a directory'}; {_RESUME_FIX}")
    if now["mode"] == "file":
        return _check_one_file(trained.model, now["path"], recorded.get("fingerprint"), now["fingerprint"],
                               recorded.get("num_sequences"), _split_of_record(recorded, "test"), _RESUME_FIX)
    notes = [_check_one_file(trained.model, os.path.join(now["path"], now["files"][name]),
                             recorded.get("fingerprint", {}).get(name), now["fingerprint"][name],
                             recorded.get("num_sequences", {}).get(name), f"the {name} file of {recorded['path']}",
                             _RESUME_FIX)
             for name in ("train", "val", "test")]
    return "; ".join(note for note in notes if note)


def _seen_prints(recorded):
    """(fingerprint of the training data, digests of its training split, of its validation split) of a split
    record, or None when it holds no fingerprint."""
    if recorded.get("mode") == "directory":
        prints = recorded.get("fingerprint", {})
        if not _comparable(prints.get("train")):
            return None
        val = set(_digests(prints["val"])) if "val" in prints else set()
        return prints["train"], set(_digests(prints["train"])), val
    if not _comparable(recorded.get("fingerprint")):
        return None
    digests = _digests(recorded["fingerprint"])
    return recorded["fingerprint"], {digests[i] for i in recorded["train"]}, {digests[i] for i in recorded["val"]}


def every_window_statement(trained, current):
    """What scoring every window of a file (fingerprint ``current``, eval_split all) means for the model
    ``trained``: a phrase for the description, e.g. 'not held-out: 18 of its 40 sequences were trained on';
    '' without a model or for one trained on digits."""
    if trained is None or trained.other_data:
        return ""
    seen = _seen_prints(trained.split) if trained.split else None
    if seen is None:
        return f"{NOT_HELD_OUT} as far as known: {trained.model} records no fingerprint to tell which were trained on"
    recorded, trained_digests, val_digests = seen
    if any(recorded.get(key) != current[key] for key in ("frames", "dtype")):
        return (f"{NOT_HELD_OUT} as far as known: its sequences ({current['frames']} frames, {current['dtype']}) "
                f"cannot be compared with those {trained.model} trained on ({recorded.get('frames')} frames, "
                f"{recorded.get('dtype')})")
    digests, count = _digests(current), current["num_sequences"]
    trained_on = sum(d in trained_digests for d in digests)
    validated_on = sum(d in val_digests and d not in trained_digests for d in digests)
    val = f" and {validated_on} were in its validation split" if validated_on else ""
    if trained_on or validated_on:
        return f"{NOT_HELD_OUT}: {trained_on} of its {count} sequences were trained on{val}"
    return f"none of its {count} sequences is one {trained.model} trained on or validated on"
