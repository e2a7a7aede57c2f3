"""A .zip as data_path (src/data/archive.py): layouts, refusals, the unpack cache, and train.py /
eval.py reading a zip end to end."""
import json
import os
import socket
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pytest

from src.data import archive
from src.data.archive import CACHE_DIR, unpack_archive, unpacked_data_path
from tests.data_files import write_idx_images
from src.data.pipeline import MNIST_TRAIN_FILES, MNIST_VAL_COUNT, load_digits
from src.data.sequences import TEST_FILE
from tests.data_files import write_test_file
from src.errors import DataError, UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_FILE = MNIST_TRAIN_FILES[0]
TRAIN_WANTED = [MNIST_TRAIN_FILES]
TEST_WANTED = [(TEST_FILE,)]


# ---------------------------------------------------------------- generated data files and zips

def _digits(count=MNIST_VAL_COUNT + 3):
    """(count, 28, 28) uint8: mostly black, a seeded 6x6 patch per image (the zip stays small)."""
    images = np.zeros((count, 28, 28), np.uint8)
    images[:, 11:17, 11:17] = np.random.default_rng(3).integers(0, 256, size=(count, 6, 6), dtype=np.uint8)
    return images


def _sequences(count=2, size=32):
    """(count, 20, size, size) uint8 whose pixels encode (sequence, frame)."""
    seq = np.arange(count, dtype=np.uint8)[:, None, None, None] * 20
    frame = np.arange(20, dtype=np.uint8)[None, :, None, None]
    return np.broadcast_to(seq + frame, (count, 20, size, size)).copy()


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    """The two MNIST files written by the project's own writers, as {name: bytes}."""
    folder = tmp_path_factory.mktemp("files")
    write_idx_images(str(folder / TRAIN_FILE), _digits())
    write_test_file(str(folder / TEST_FILE), _sequences())
    return {name: (folder / name).read_bytes() for name in (TRAIN_FILE, TEST_FILE)}


def _zip(path, members, compression=zipfile.ZIP_DEFLATED):
    """Write ``members`` ({member name: bytes}) as a zip; names are stored exactly as given."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return str(path)


def _openi_zip(path, data_files):
    """The OpenI layout: data/train-images-idx3-ubyte.gz and data/mnist_test_seq.npy."""
    return _zip(path, {f"data/{name}": data for name, data in data_files.items()})


def _cfg(tiny_cfg, data_path, output_dir):
    return tiny_cfg.replace(dataset="mnist", data_path=str(data_path), output_dir=str(output_dir))


def _tree(root):
    """Relative paths of every file and folder under ``root`` (empty if it does not exist)."""
    found = set()
    for folder, dirs, names in os.walk(root):
        found.update(os.path.relpath(os.path.join(folder, n), root) for n in dirs + names)
    return found


# ---------------------------------------------------------------- layouts

def test_openi_zip_with_a_data_folder_feeds_training_and_evaluation(tmp_path, tiny_cfg, data_files):
    from src.evaluation import build_source

    cfg = _cfg(tiny_cfg, _openi_zip(tmp_path / "data.zip", data_files), tmp_path / "run")
    train, val = load_digits(cfg, "train"), load_digits(cfg, "val")
    np.testing.assert_array_equal(train, _digits()[:-MNIST_VAL_COUNT])
    np.testing.assert_array_equal(val, _digits()[-MNIST_VAL_COUNT:])

    source, described = build_source(cfg.replace(image_size=32, num_sequences=0))
    assert len(source) == 2
    np.testing.assert_array_equal(np.concatenate(source[1])[:, 0] * 255, _sequences()[1].astype(np.float32))
    (unpacked,) = os.listdir(tmp_path / "run" / CACHE_DIR)
    assert unpacked.startswith("data-")
    assert described["data_path"] == str(tmp_path / "run" / CACHE_DIR / unpacked / "data" / TEST_FILE)


def test_zip_with_the_files_at_its_root(tmp_path, data_files):
    zip_path = _zip(tmp_path / "mnist.zip", data_files)
    folder = unpack_archive(zip_path, str(tmp_path / "cache"), TEST_WANTED)
    assert os.path.dirname(folder) == str(tmp_path / "cache") and os.path.basename(folder).startswith("mnist-")
    assert sorted(os.listdir(folder)) == sorted([*data_files, archive.DONE_MARK])  # the completion marker sits beside them
    with open(os.path.join(folder, TEST_FILE), "rb") as f:
        assert f.read() == data_files[TEST_FILE]


def test_uncompressed_training_file_name_is_accepted(tmp_path, tiny_cfg):
    images = _digits()
    write_idx_images(str(tmp_path / "plain"), images, compress=False)
    zip_path = _zip(tmp_path / "plain.zip", {f"mnist/{MNIST_TRAIN_FILES[1]}": (tmp_path / "plain").read_bytes()})
    cfg = _cfg(tiny_cfg, zip_path, tmp_path / "run")
    np.testing.assert_array_equal(load_digits(cfg, "val"), images[-MNIST_VAL_COUNT:])


def test_macos_resource_folder_is_not_a_second_top_folder(tmp_path, data_files):
    members = {f"data/{TEST_FILE}": data_files[TEST_FILE], f"__MACOSX/data/._{TEST_FILE}": b"\0\5\26\7",
               f"__MACOSX/{TEST_FILE}": b"junk"}
    folder = unpack_archive(_zip(tmp_path / "mac.zip", members), str(tmp_path / "cache"), TEST_WANTED)
    assert folder.endswith(os.path.join("", "data")) and os.path.isfile(os.path.join(folder, TEST_FILE))


def test_a_directory_named_like_a_zip_is_a_directory(tmp_path, tiny_cfg):
    folder = tmp_path / "odd.zip"
    folder.mkdir()
    assert unpacked_data_path(_cfg(tiny_cfg, folder, tmp_path / "run"), TEST_WANTED) == str(folder)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- refusals: one line, nothing written

def _refused(zip_path, cache, wanted, *fragments):
    with pytest.raises(DataError) as caught:
        unpack_archive(str(zip_path), str(cache), wanted)
    message = str(caught.value)
    assert "\n" not in message and str(zip_path) in message
    for fragment in fragments:
        assert fragment in message, message
    assert not os.path.exists(cache), "a refused zip must not write anything"
    return message


def test_wrong_layout_names_the_zip_what_was_expected_and_what_it_holds(tmp_path, data_files):
    members = {f"pictures/{i}.png": b"png" for i in range(6)}
    members["readme.txt"] = b"hello"
    zip_path = _zip(tmp_path / "other.zip", members)
    _refused(zip_path, tmp_path / "cache", TRAIN_WANTED, f"expected {TRAIN_FILE} (or {MNIST_TRAIN_FILES[1]})",
             "at the zip root or under one top folder", "pictures/0.png", "(7 files)")


def test_training_needs_the_training_file_even_if_the_test_file_is_there(tmp_path, tiny_cfg, data_files):
    zip_path = _zip(tmp_path / "test_only.zip", {f"data/{TEST_FILE}": data_files[TEST_FILE]})
    with pytest.raises(DataError, match=f"expected {TRAIN_FILE} .*holds: data/{TEST_FILE}$"):
        load_digits(_cfg(tiny_cfg, zip_path, tmp_path / "run"), "train")
    assert not (tmp_path / "run").exists()


def test_files_deeper_than_one_top_folder_are_the_wrong_layout(tmp_path, data_files):
    zip_path = _zip(tmp_path / "deep.zip", {f"a/b/{TEST_FILE}": data_files[TEST_FILE]})
    _refused(zip_path, tmp_path / "cache", TEST_WANTED, f"expected {TEST_FILE} at the zip root", f"a/b/{TEST_FILE}")


def test_two_candidate_top_folders_are_ambiguous(tmp_path, data_files):
    zip_path = _zip(tmp_path / "two.zip", {f"{top}/{TEST_FILE}": data_files[TEST_FILE] for top in ("old", "new")})
    _refused(zip_path, tmp_path / "cache", TEST_WANTED, "several top folders", "new/, old/")


@pytest.mark.parametrize("name", ["../evil.txt", "data/../../evil.txt", "/tmp/evil.txt", "..\\evil.txt",
                                  "C:/evil.txt"])
def test_zip_slip_members_are_refused(tmp_path, data_files, name):
    members = {f"data/{TEST_FILE}": data_files[TEST_FILE], name: b"outside"}
    zip_path = _zip(tmp_path / "slip.zip", members)
    _refused(zip_path, tmp_path / "cache", TEST_WANTED, repr(name), "refusing to unpack")
    assert not (tmp_path / "evil.txt").exists()


def _garbage(path, _data_files):
    path.write_bytes(np.random.default_rng(0).bytes(2048))


def _truncated(path, data_files):
    _openi_zip(path, data_files)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _empty(path, _data_files):
    _zip(path, {})


@pytest.mark.parametrize("damage, fragment", [(_garbage, "not a readable zip archive"),
                                              (_truncated, "not a readable zip archive"),
                                              (_empty, "empty zip archive")])
def test_unreadable_zip_is_one_line(tmp_path, data_files, damage, fragment):
    zip_path = tmp_path / "data.zip"
    damage(zip_path, data_files)
    _refused(zip_path, tmp_path / "cache", TEST_WANTED, fragment)


def test_missing_zip_is_one_line(tmp_path, tiny_cfg):
    missing = tmp_path / "nowhere.zip"
    with pytest.raises(DataError, match=f"data_path {missing} does not exist"):
        load_digits(_cfg(tiny_cfg, missing, tmp_path / "run"), "train")


def test_corrupt_member_data_leaves_no_cache(tmp_path, data_files):
    """A flipped byte inside a stored member passes the member table but fails its CRC-32."""
    zip_path = _zip(tmp_path / "crc.zip", {TEST_FILE: data_files[TEST_FILE]}, compression=zipfile.ZIP_STORED)
    data = bytearray((tmp_path / "crc.zip").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "crc.zip").write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=f"member {TEST_FILE} is corrupt.*CRC"):
        unpack_archive(zip_path, str(cache), TEST_WANTED)
    assert os.listdir(cache) == []  # neither the final folder nor the temporary one


def test_remote_url_outside_the_entry_points_is_explained(tmp_path, tiny_cfg):
    with pytest.raises(DataError, match="remote URL; only train.py and eval.py copy remote data in"):
        load_digits(_cfg(tiny_cfg, "obs://bucket/data.zip", tmp_path / "run"), "train")


def test_a_failed_write_is_one_line_and_leaves_no_cache(tmp_path, data_files, monkeypatch):
    zip_path = _openi_zip(tmp_path / "data.zip", data_files)

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(archive.zipfile.ZipFile, "extract", disk_full)
    with pytest.raises(UserError, match=r"while unpacking .*No space left on device.*free disk space"):
        unpack_archive(zip_path, str(tmp_path / "cache"), TEST_WANTED)
    assert os.listdir(tmp_path / "cache") == []


# ---------------------------------------------------------------- the cache

def _file_mtimes(folder):
    return {p: os.stat(os.path.join(folder, p)).st_mtime_ns for p in _tree(folder)}


def test_second_use_reuses_the_unpacked_folder(tmp_path, data_files, monkeypatch, capsys):
    zip_path = _openi_zip(tmp_path / "data.zip", data_files)
    cache = str(tmp_path / "cache")
    first = unpack_archive(zip_path, cache, TEST_WANTED)
    assert "unpacking" in capsys.readouterr().out
    mtimes = _file_mtimes(first)

    def no_extraction(*_args):
        raise AssertionError("the zip was unpacked a second time")

    monkeypatch.setattr(archive, "_extract_atomically", no_extraction)
    monkeypatch.setattr(archive, "_reported", set())
    assert unpack_archive(zip_path, cache, TRAIN_WANTED) == first  # same zip, other purpose: same folder
    assert _file_mtimes(first) == mtimes
    assert "already unpacked" in capsys.readouterr().out


def test_a_changed_zip_gets_its_own_folder(tmp_path, data_files):
    cache = str(tmp_path / "cache")
    zip_path = _zip(tmp_path / "data.zip", data_files)
    first = unpack_archive(zip_path, cache, TEST_WANTED)
    _zip(tmp_path / "data.zip", dict(data_files, **{TEST_FILE: data_files[TEST_FILE][:-1] + b"\1"}))
    second = unpack_archive(zip_path, cache, TEST_WANTED)
    assert second != first and os.path.isdir(first)
    with open(os.path.join(second, TEST_FILE), "rb") as f:
        assert f.read()[-1:] == b"\1"


def test_an_interrupted_extraction_is_never_used(tmp_path, data_files, monkeypatch):
    zip_path = _openi_zip(tmp_path / "data.zip", data_files)
    cache = tmp_path / "cache"
    real = archive._extract_member
    calls = []

    def crash_after_first(*args):
        calls.append(args[2].filename)
        if len(calls) == 2:
            raise KeyboardInterrupt  # e.g. Ctrl-C while the second member is written
        real(*args)

    monkeypatch.setattr(archive, "_extract_member", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        unpack_archive(zip_path, str(cache), TEST_WANTED)
    assert os.listdir(cache) == []
    monkeypatch.setattr(archive, "_extract_member", real)
    folder = unpack_archive(zip_path, str(cache), TEST_WANTED)
    assert sorted(os.listdir(folder)) == sorted(data_files)


def test_only_a_finished_extraction_is_used(tmp_path, data_files):
    """A killed extraction's temporary folder is never read; a final folder without the completion
    marker (not written by this code) is refused in one line instead of being trusted."""
    zip_path = _openi_zip(tmp_path / "data.zip", data_files)
    cache = tmp_path / "cache"
    leftover = cache / ".unpacking-killed"
    leftover.mkdir(parents=True)
    (leftover / "half").write_bytes(b"x")
    folder = unpack_archive(zip_path, str(cache), TEST_WANTED)
    assert sorted(os.listdir(folder)) == sorted(data_files)
    final = os.path.dirname(folder)
    assert os.path.isfile(os.path.join(final, archive.DONE_MARK))
    os.remove(os.path.join(final, archive.DONE_MARK))
    with pytest.raises(UserError, match=f"could not move the unpacked data to {final} .*delete {final}"):
        unpack_archive(zip_path, str(cache), TEST_WANTED)
    assert sorted(os.listdir(cache)) == sorted([".unpacking-killed", os.path.basename(final)])


def test_concurrent_extractions_agree_on_one_complete_folder(tmp_path, data_files):
    """Ranks of a distributed run unpack at once: each in its own temp folder, one rename wins."""
    zip_path = _openi_zip(tmp_path / "data.zip", data_files)
    cache = str(tmp_path / "cache")
    start, results = threading.Barrier(4), []

    def rank():
        start.wait()
        results.append(unpack_archive(zip_path, cache, TRAIN_WANTED))

    threads = [threading.Thread(target=rank) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert os.listdir(cache) == [os.path.basename(os.path.dirname(results[0]))]  # no temporary folder left
    assert sorted(os.listdir(results[0])) == sorted(data_files)


def test_losing_the_rename_race_keeps_the_winners_folder(tmp_path, data_files):
    zip_path = _zip(tmp_path / "data.zip", data_files)
    winner, ours = tmp_path / "final", tmp_path / "ours"
    for folder in (winner, ours):
        folder.mkdir()
        for name, data in data_files.items():
            (folder / name).write_bytes(data)
    (winner / archive.DONE_MARK).write_bytes(b"")
    before = _file_mtimes(str(winner))
    archive._publish(str(ours), str(winner))
    assert _file_mtimes(str(winner)) == before and ours.exists()  # the caller removes ours


# ---------------------------------------------------------------- the entry points

def _run(script, argv):
    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_v", "CONVLSTM_DEBUG_DUMP")}
    return subprocess.run([sys.executable, script] + argv, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


TINY_TRAIN = ["--config_path", "configs/cpu_small.yaml", "--dataset", "mnist", "--hidden_channels", "4",
              "--kernel_size", "3", "--image_size", "32", "--input_frames", "3", "--output_frames", "2",
              "--epochs", "1", "--steps_per_epoch", "1", "--batch_size", "1", "--val_sequences", "2",
              "--num_workers", "1", "--mode", "pynative"]


def test_train_py_on_an_openi_zip(tmp_path, data_files):
    zip_path = _openi_zip(tmp_path / "data.zip", data_files)
    proc = _run("train.py", TINY_TRAIN + ["--data_path", zip_path, "--output_dir", str(tmp_path / "run")])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"data: unpacking {zip_path}" in proc.stdout
    (unpacked,) = os.listdir(tmp_path / "run" / CACHE_DIR)
    assert os.path.isfile(tmp_path / "run" / CACHE_DIR / unpacked / "data" / TRAIN_FILE)
    assert os.path.isfile(tmp_path / "run" / "ckpt" / "last.ckpt")


def test_eval_py_on_a_zip_holding_only_the_test_set(tmp_path, data_files):
    zip_path = _zip(tmp_path / "test_set.zip", {TEST_FILE: data_files[TEST_FILE]})
    out = tmp_path / "eval"
    argv = ["--config_path", "configs/cpu_small.yaml", "--dataset", "mnist", "--data_path", zip_path,
            "--image_size", "32", "--baseline", "copy_last", "--output_dir", str(out)]
    proc = _run("eval.py", argv)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out / "metrics.json") as f:
        report = json.load(f)
    assert report["data_path"].startswith(str(out / CACHE_DIR / "test_set-"))
    assert report["data_path"].endswith(TEST_FILE)
    # copy_last predicts frame 9 for frames 10..19: each pixel is off by k = 1..10 grey levels, so the
    # per-frame pixel-sum MSE averages 32*32 * mean(k^2) / 255^2 = 1024 * 38.5 / 65025
    assert report["num_sequences"] == 2
    assert report["mse"] == pytest.approx(1024 * 38.5 / 255 ** 2, rel=1e-4)


@pytest.mark.parametrize("script", ["train.py", "eval.py"])
def test_entry_points_refuse_a_bad_zip_in_one_line(tmp_path, script):
    zip_path = _zip(tmp_path / "wrong.zip", {"notes/readme.txt": b"hi"})
    argv = ["--config_path", "configs/cpu_small.yaml", "--dataset", "mnist", "--data_path", zip_path,
            "--output_dir", str(tmp_path / "out")] + (["--baseline", "zeros"] if script == "eval.py" else [])
    proc = _run(script, argv)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: data_path {zip_path}: expected "), proc.stderr
    assert "notes/readme.txt" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
