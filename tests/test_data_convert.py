"""python -m src.data.convert: image folders, HDF5 and NetCDF files to the (N, T, C, H, W) .npy that train.py reads.
Exact round trips, CF/ODIM unpacking, one-line refusals that leave nothing behind, and converted data trained and
evaluated with the options the converter prints."""
import errno
import json
import os
import shlex
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import h5netcdf
import h5py
import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy.io import netcdf_file

from src.cli import run_cli
from src.data.convert.__main__ import main
from src.data.convert.source import Source, natural_sorted
from src.data.convert.writer import write_converted
from src.data.rain_cells import RainCells
from src.data.sequences import SequenceFile
from tests.test_own_data_end_to_end import REPO, TINY, ok as ok_script

RNG = np.random.default_rng(7)


# ---------------------------------------------------------------- helpers

def cli(capsys, *args):
    """Run the command line in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        run_cli(main, argv=[str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def converted(capsys, *args):
    """Convert; (array written, its sidecar, stdout). The array is also opened by the project's reader."""
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    path = str(args[1])
    assert SequenceFile(path, "NTCHW").shape == np.load(path).shape  # what train.py opens
    with open(path[:-4] + ".json", encoding="utf-8") as f:
        return np.load(path), json.load(f), out


def refused(capsys, *args):
    """The one `error:` line of a refused conversion, after checking it exits 2 and writes nothing."""
    code, out, err = cli(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    out_dir = os.path.dirname(os.path.abspath(str(args[1]))) if len(args) > 1 else None
    assert not out_dir or not os.path.isdir(out_dir) or os.listdir(out_dir) == [], os.listdir(out_dir)
    return lines[0]


def save_frames(root, sequences, name="frame{}.png", save=None):
    """(N, T, H, W[, S]) frames as root/seqK/frame1.png ... (numbered from 1); returns root."""
    for n, sequence in enumerate(sequences):
        folder = root / f"seq{n}"
        folder.mkdir(parents=True)
        for t, frame in enumerate(sequence):
            path = folder / name.format(t + 1)
            if save:
                save(path, frame)
            else:
                Image.fromarray(frame).save(path)
    return root


def png_16bit_colour(path, height=4, width=5):
    """A valid 16-bit RGB PNG (Pillow cannot write one): signature, IHDR, IDAT, IEND."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(range(width * 6)) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def save_tiff(path, frame):
    tifffile.imwrite(path, frame, photometric="rgb" if frame.ndim == 3 else "minisblack")


def out_file(tmp_path, name="out.npy"):
    return tmp_path / "out" / name


# ---------------------------------------------------------------- image folders

def test_natural_order_compares_digit_runs_as_numbers():
    names = ["frame10.png", "frame2.png", "Frame1.png", "frame1b.png", "frame02.png", "frame100.png"]
    assert natural_sorted(names) == ["Frame1.png", "frame1b.png", "frame02.png", "frame2.png", "frame10.png",
                                     "frame100.png"]


def test_png_8bit_grey_round_trip_in_natural_frame_order(tmp_path, capsys):
    frames = RNG.integers(0, 256, (3, 11, 6, 8), dtype=np.uint8)  # frame1 .. frame11: name order != time order
    save_frames(tmp_path / "src", frames)
    out = out_file(tmp_path)
    data, record, stdout = converted(capsys, tmp_path / "src", out)
    assert data.dtype == np.uint8 and data.shape == (3, 11, 1, 6, 8)
    np.testing.assert_array_equal(data[:, :, 0], frames)
    assert record["sequences"] == ["seq0", "seq1", "seq2"] and record["bit_depth"] == 8
    assert record["kind"] == "image frames" and record["colour"].startswith("grey")
    assert record["value_range"] == [float(frames.min()), float(frames.max())] and record["dtype"] == "uint8"
    assert record["source"] == str(tmp_path / "src") and record["data_layout"] == "NTCHW"
    assert f"train with: python train.py --dataset sequences --data_path {out} --data_layout NTCHW " \
           "--input_frames 5 --output_frames 6" in stdout  # uint8: data_scale auto; 11 frames < 10 + 10


def test_png_16bit_grey_round_trip(tmp_path, capsys):
    frames = RNG.integers(0, 65536, (2, 3, 5, 7), dtype=np.uint16)
    frames[0, 0, 0, 0], frames[0, 0, 0, 1] = 0, 65535
    save_frames(tmp_path / "src", frames)
    data, record, _ = converted(capsys, tmp_path / "src", out_file(tmp_path))
    assert data.dtype == np.uint16 and record["bit_depth"] == 16
    np.testing.assert_array_equal(data[:, :, 0], frames)


def test_colour_png_round_trip_keeps_three_channels_and_drops_alpha(tmp_path, capsys):
    frames = RNG.integers(0, 256, (2, 3, 4, 6, 4), dtype=np.uint8)  # RGBA
    save_frames(tmp_path / "rgba", frames)
    data, record, _ = converted(capsys, tmp_path / "rgba", out_file(tmp_path))
    assert data.shape == (2, 3, 3, 4, 6) and record["colour"] == "colour (3 channels)"
    np.testing.assert_array_equal(data, np.moveaxis(frames[..., :3], -1, 2))


def test_grey_option_gives_the_luma_of_colour_frames(tmp_path, capsys):
    frames = RNG.integers(0, 256, (2, 3, 5, 6, 3), dtype=np.uint8)
    frames[0, 0] = frames[0, 0, :, :, :1]  # R = G = B: its grey is that value exactly
    save_frames(tmp_path / "src", frames)
    data, record, _ = converted(capsys, tmp_path / "src", out_file(tmp_path), "--grey", "true")
    assert data.shape == (2, 3, 1, 5, 6) and record["converted_to_grey"] is True
    np.testing.assert_array_equal(data[0, 0, 0], frames[0, 0, :, :, 0])
    pillow = np.stack([[np.asarray(Image.fromarray(f).convert("L")) for f in s] for s in frames])
    assert np.abs(data[:, :, 0].astype(int) - pillow).max() <= 1  # Pillow's integer approximation of the weights


def test_grey_option_allows_mixing_grey_and_colour_frames(tmp_path, capsys):
    save_frames(tmp_path / "src", RNG.integers(0, 256, (1, 2, 4, 4, 3), dtype=np.uint8))
    grey = RNG.integers(0, 256, (4, 4), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "src" / "seq0" / "frame3.png")
    line = refused(capsys, tmp_path / "src", out_file(tmp_path))
    assert "frame3.png: grey (1 channel), but" in line and "frame1.png is colour (3 channels)" in line
    assert "--grey true" in line
    data, _, _ = converted(capsys, tmp_path / "src", out_file(tmp_path), "--grey", "true")
    np.testing.assert_array_equal(data[0, 2, 0], grey)


def test_tiff_round_trips_16bit_grey_16bit_colour_and_float(tmp_path, capsys):
    cases = {"uint16": RNG.integers(0, 65536, (2, 3, 6, 5), dtype=np.uint16),
             "rgb16": RNG.integers(0, 65536, (2, 3, 6, 5, 3), dtype=np.uint16),
             "float": RNG.normal(20.0, 15.0, (2, 3, 6, 5)).astype(np.float32)}
    for name, frames in cases.items():
        save_frames(tmp_path / name, frames, "frame{}.tif", save=save_tiff)
        out = out_file(tmp_path, f"{name}.npy")
        data, record, stdout = converted(capsys, tmp_path / name, out)
        want = np.moveaxis(frames, -1, 2) if frames.ndim == 5 else frames[:, :, None]
        assert data.dtype == frames.dtype
        np.testing.assert_array_equal(data, want)
    low, high = cases["float"].min(), cases["float"].max()
    assert record["bit_depth"] == 32 and f"--data_scale minmax --data_min {np.format_float_positional(low, trim='-')}" \
        f" --data_max {np.format_float_positional(high, trim='-')}" in stdout


def test_jpeg_frames_are_read_lossy_but_close(tmp_path, capsys):
    frames = np.repeat(np.linspace(0, 255, 16, dtype=np.uint8)[None, None, None], 16, axis=2)  # smooth ramp
    frames = np.repeat(frames, 2, axis=1)  # (1, 2, 16, 16)
    save_frames(tmp_path / "src", frames, "f{}.jpg", save=lambda p, f: Image.fromarray(f).save(p, quality=95))
    data, _, _ = converted(capsys, tmp_path / "src", out_file(tmp_path))
    assert data.shape == (1, 2, 1, 16, 16) and np.abs(data[:, :, 0].astype(int) - frames).max() <= 4


def test_a_folder_of_frames_is_one_sequence(tmp_path, capsys):
    frames = RNG.integers(0, 256, (1, 4, 3, 3), dtype=np.uint8)
    save_frames(tmp_path, frames)
    data, record, _ = converted(capsys, tmp_path / "seq0", out_file(tmp_path))
    np.testing.assert_array_equal(data[:, :, 0], frames)
    assert record["sequences"] == ["seq0"]


# ---------------------------------------------------------------- image folders refused

def test_frames_of_another_size_are_refused_naming_the_file(tmp_path, capsys):
    save_frames(tmp_path / "src", RNG.integers(0, 256, (2, 3, 4, 4), dtype=np.uint8))
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "src" / "seq1" / "frame2.png")
    line = refused(capsys, tmp_path / "src", out_file(tmp_path))
    assert f"{tmp_path / 'src' / 'seq1' / 'frame2.png'}: 4x5 pixels, but" in line and "has 4x4" in line


def test_a_sequence_with_a_missing_frame_is_refused_naming_its_folder(tmp_path, capsys):
    save_frames(tmp_path / "src", RNG.integers(0, 256, (3, 4, 4, 4), dtype=np.uint8))
    os.remove(tmp_path / "src" / "seq1" / "frame3.png")
    line = refused(capsys, tmp_path / "src", out_file(tmp_path))
    assert f"{tmp_path / 'src' / 'seq1'}: 3 frames, but 2 of the 3 sequences have 4" in line


def test_mixed_bit_depths_are_refused(tmp_path, capsys):
    save_frames(tmp_path / "src", RNG.integers(0, 256, (1, 2, 4, 4), dtype=np.uint8))
    Image.fromarray(np.full((4, 4), 1000, np.uint16)).save(tmp_path / "src" / "seq0" / "frame3.png")
    line = refused(capsys, tmp_path / "src", out_file(tmp_path))
    assert "frame3.png: 16-bit uint16 samples, but" in line and "8-bit uint8" in line


def test_empty_folders_are_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert "no image frames" in refused(capsys, tmp_path / "empty", out_file(tmp_path))
    save_frames(tmp_path / "src", RNG.integers(0, 256, (1, 2, 4, 4), dtype=np.uint8))
    (tmp_path / "src" / "seq1").mkdir()
    (tmp_path / "src" / "seq1" / "notes.txt").write_text("no frames here")
    line = refused(capsys, tmp_path / "src", out_file(tmp_path))
    assert f"{tmp_path / 'src' / 'seq1'}: no image frames" in line


def test_corrupt_and_truncated_frames_are_refused_and_leave_nothing(tmp_path, capsys):
    save_frames(tmp_path / "src", RNG.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8))
    bad = tmp_path / "src" / "seq1" / "frame2.png"
    whole = bad.read_bytes()
    bad.write_bytes(b"this is not a png")
    line = refused(capsys, tmp_path / "src", out_file(tmp_path))
    assert f"{bad}: not a readable image" in line
    bad.write_bytes(whole[:len(whole) // 2])  # the header reads, the pixels do not: fails while writing
    line = refused(capsys, tmp_path / "src", out_file(tmp_path))
    assert f"{bad}: not a readable image" in line


def test_16bit_colour_png_is_refused_rather_than_read_as_8_bits(tmp_path, capsys):
    (tmp_path / "src" / "seq0").mkdir(parents=True)
    png_16bit_colour(tmp_path / "src" / "seq0" / "frame1.png")
    assert "16-bit colour PNG" in refused(capsys, tmp_path / "src", out_file(tmp_path))


# ---------------------------------------------------------------- output file

def test_an_existing_output_is_kept_unless_overwrite(tmp_path, capsys):
    save_frames(tmp_path / "src", RNG.integers(0, 256, (1, 2, 4, 4), dtype=np.uint8))
    out = tmp_path / "out.npy"
    out.write_bytes(b"precious")
    code, _, err = cli(capsys, tmp_path / "src", out)
    assert code == 2 and f"{out} already exists" in err and "--overwrite true" in err
    assert out.read_bytes() == b"precious" and not (tmp_path / "out.json").exists()
    data, _, _ = converted(capsys, tmp_path / "src", out, "--overwrite", "true")
    assert data.shape == (1, 2, 1, 4, 4)
    assert sorted(os.listdir(tmp_path)) == ["out.json", "out.npy", "src"]  # no temporary file left


def test_a_failure_while_writing_keeps_the_old_output(tmp_path, capsys):
    save_frames(tmp_path / "src", RNG.integers(0, 256, (3, 2, 32, 32), dtype=np.uint8))
    last = tmp_path / "src" / "seq2" / "frame2.png"
    last.write_bytes(last.read_bytes()[:200])  # read after two sequences were written
    out = tmp_path / "out.npy"
    out.write_bytes(b"old data")
    code, _, err = cli(capsys, tmp_path / "src", out, "--overwrite", "true")
    assert code == 2 and f"{last}: not a readable image" in err
    assert out.read_bytes() == b"old data" and sorted(os.listdir(tmp_path)) == ["out.npy", "src"]


def test_the_output_is_mapped_one_sequence_at_a_time(tmp_path, capsys, monkeypatch):
    """Memory stays bounded by one sequence: after creating the file, every memory map covers one sequence."""
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["frames"] = sequences = RNG.integers(0, 256, (3, 4, 5, 5), dtype=np.uint8)
    shapes, real = [], np.memmap

    def recording(*args, **kwargs):
        shapes.append(tuple(kwargs["shape"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "memmap", recording)
    code, _, err = cli(capsys, tmp_path / "a.h5", tmp_path / "a.npy")
    monkeypatch.undo()
    assert code == 0, err
    assert shapes == [(3, 4, 1, 5, 5)] + [(4, 1, 5, 5)] * 3  # open_memmap creates the file, then one map a sequence
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy")[:, :, 0], sequences)


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    save_frames(tmp_path / "src", RNG.integers(0, 256, (2, 2, 4, 4), dtype=np.uint8))

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space, raising=False)
    line = refused(capsys, tmp_path / "src", out_file(tmp_path))
    assert f"could not write {out_file(tmp_path)} (No space left on device); nothing was written" in line


def test_ctrl_c_while_writing_leaves_nothing(tmp_path):
    def blocks(index):
        if index == 1:
            raise KeyboardInterrupt
        yield 0, np.zeros((2, 1, 4, 4), np.uint8)

    source = Source(str(tmp_path / "src"), (3, 2, 1, 4, 4), np.dtype(np.uint8), blocks, {"kind": "test"})
    with pytest.raises(KeyboardInterrupt):
        write_converted(source, str(tmp_path / "out.npy"))
    assert os.listdir(tmp_path) == []


def test_option_mistakes_are_one_line(tmp_path, capsys):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["frames"] = np.zeros((2, 3, 4, 4), np.uint8)
    out = tmp_path / "out" / "a.npy"
    assert "unknown option --datset" in refused(capsys, tmp_path / "a.h5", out, "--datset", "frames")
    assert "both given" in refused(capsys, tmp_path / "a.h5", out, "--dataset", "frames", "--variable", "frames")
    assert "--layout NTHX" in refused(capsys, tmp_path / "a.h5", out, "--layout", "NTHX")
    assert "--layout THW names 3" in refused(capsys, tmp_path / "a.h5", out, "--layout", "THW")
    assert "expected SOURCE and OUT.npy" in refused(capsys, tmp_path / "a.h5")
    assert "--fill: expected nan or a number" in refused(capsys, tmp_path / "a.h5", out, "--fill", "low")


def test_output_must_be_an_npy_name(tmp_path, capsys):
    save_frames(tmp_path / "src", RNG.integers(0, 256, (1, 2, 4, 4), dtype=np.uint8))
    assert "must be a .npy file" in refused(capsys, tmp_path / "src", tmp_path / "out" / "frames.dat")


# ---------------------------------------------------------------- HDF5

def test_hdf5_arrays_of_both_shapes_round_trip(tmp_path, capsys):
    sequences = RNG.integers(0, 256, (3, 5, 4, 6), dtype=np.uint8)  # (N, T, H, W)
    one = RNG.normal(size=(7, 4, 6)).astype(np.float32)  # (T, H, W): one sequence
    five = RNG.integers(0, 65536, (2, 3, 2, 4, 4), dtype=np.uint16)  # (N, T, C, H, W)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["group/sequences"], f["one"], f["five"] = sequences, one, five
    data, record, _ = converted(capsys, tmp_path / "a.h5", out_file(tmp_path, "a.npy"), "--dataset", "group/sequences")
    assert data.dtype == np.uint8 and record["source_layout"] == "NTHW" and record["bit_depth"] == 8
    np.testing.assert_array_equal(data[:, :, 0], sequences)
    data, record, _ = converted(capsys, tmp_path / "a.h5", out_file(tmp_path, "b.npy"), "--dataset", "one")
    assert data.shape == (1, 7, 1, 4, 6) and data.dtype == np.float32 and record["source_layout"] == "THW"
    np.testing.assert_array_equal(data[0, :, 0], one)
    data, _, _ = converted(capsys, tmp_path / "a.h5", out_file(tmp_path, "c.npy"), "--dataset", "five")
    np.testing.assert_array_equal(data, five)


def test_hdf5_time_first_array_with_layout(tmp_path, capsys):
    sequences = RNG.integers(0, 256, (3, 5, 4, 4), dtype=np.uint8)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["frames"] = sequences.transpose(1, 0, 2, 3)  # (T, N, H, W), as mnist_test_seq.npy
    data, _, _ = converted(capsys, tmp_path / "a.h5", out_file(tmp_path), "--layout", "TNHW")
    np.testing.assert_array_equal(data[:, :, 0], sequences)  # the only array of >= 3 dimensions: no --dataset


def test_hdf5_cf_attributes_are_applied(tmp_path, capsys):
    raw = RNG.integers(-100, 1000, (2, 4, 3, 5), dtype=np.int16)
    raw[1, 2, 0, 0] = -32768
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["packed"] = raw
        f["packed"].attrs.update({"scale_factor": 0.5, "add_offset": -32.0, "_FillValue": np.int16(-32768),
                                  "units": "dBZ"})
    data, record, stdout = converted(capsys, tmp_path / "a.h5", out_file(tmp_path), "--dataset", "packed")
    want = (raw * 0.5 - 32.0).astype(np.float32)
    want[1, 2, 0, 0] = np.nan
    np.testing.assert_array_equal(data[:, :, 0], want)
    assert record["units"] == "dBZ" and record["non_finite_values"] == 1 and record["missing_values"] == [-32768.0]
    assert "--fill" in stdout and "NaN" in stdout
    assert record["train_options"][-2:] == ["--nodata", "nan"] and "--nodata nan" in stdout  # the way to train on them


def odim_like(path, frames, gain=0.5, offset=-32.0, nodata=255):
    """One 2-D scan per /datasetK/data1 (DBZH, ODIM gain/offset/nodata in what groups) and a VRADH data2."""
    with h5py.File(path, "w") as f:
        f.create_group("what").attrs["object"] = b"PVOL"
        for k, frame in enumerate(frames, start=1):
            f[f"dataset{k}/data1/data"] = frame
            f.require_group(f"dataset{k}/data1/what").attrs.update(
                {"quantity": b"DBZH", "gain": gain, "offset": offset, "nodata": float(nodata), "undetect": 0.0})
            f[f"dataset{k}/data2/data"] = frame
            f.require_group(f"dataset{k}/data2/what").attrs.update({"quantity": b"VRADH", "gain": 1.0, "offset": 0.0})


def test_hdf5_group_of_2d_frames_odim_like(tmp_path, capsys):
    frames = RNG.integers(0, 255, (11, 4, 5), dtype=np.uint8)  # dataset1 .. dataset11: natural order matters
    frames[3, 0, 0] = 255
    odim_like(tmp_path / "scan.h5", frames)
    data, record, _ = converted(capsys, tmp_path / "scan.h5", out_file(tmp_path), "--dataset", "dataset*/data1/data")
    want = (frames * 0.5 - 32.0).astype(np.float32)
    want[3, 0, 0] = np.nan
    assert data.shape == (1, 11, 1, 4, 5)
    np.testing.assert_array_equal(data[0, :, 0], want)
    assert record["units"] == "dBZ" and record["quantity"] == "DBZH" and record["kind"] == "HDF5 frames"
    assert record["frames"][:3] == ["dataset1/data1/data", "dataset2/data1/data", "dataset3/data1/data"]
    line = refused(capsys, tmp_path / "scan.h5", tmp_path / "refused" / "out.npy", "--dataset", "/")
    assert "mix the quantities DBZH, VRADH" in line


def test_unknown_hdf5_dataset_lists_the_available_ones(tmp_path, capsys):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["radar/reflectivity"] = np.zeros((2, 3, 4, 4), np.uint8)
        f["time"] = np.arange(3)
    line = refused(capsys, tmp_path / "a.h5", out_file(tmp_path), "--dataset", "radar/refl")
    assert f"{tmp_path / 'a.h5'}: no dataset 'radar/refl'" in line and "radar/reflectivity (2, 3, 4, 4) uint8" in line
    assert "time (3,) int64" in line


def test_corrupt_hdf5_file_is_refused(tmp_path, capsys):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["frames"] = RNG.normal(size=(3, 64, 64)).astype(np.float32)
    whole = (tmp_path / "a.h5").read_bytes()
    (tmp_path / "a.h5").write_bytes(whole[:len(whole) // 3])
    line = refused(capsys, tmp_path / "a.h5", out_file(tmp_path), "--dataset", "frames")
    assert str(tmp_path / "a.h5") in line and ("not a readable HDF5 file" in line or "corrupt" in line)


def test_a_missing_package_names_the_requirements_file(tmp_path, capsys, monkeypatch):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["frames"] = np.zeros((3, 4, 4), np.uint8)
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now fails
    line = refused(capsys, tmp_path / "a.h5", out_file(tmp_path))
    assert "'h5py'" in line and "pip install -r requirements-convert.txt" in line


# ---------------------------------------------------------------- NetCDF

PACKED = {"scale_factor": np.float32(0.5), "add_offset": np.float32(-32.0), "units": "dBZ"}


def packed_reflectivity(shape):
    raw = RNG.integers(-60, 200, shape, dtype=np.int16)
    raw.reshape(-1)[[1, 17]] = -999
    want = (raw.astype(np.float64) * 0.5 - 32.0).astype(np.float32)
    want[raw == -999] = np.nan
    return raw, want


def test_netcdf4_variable_with_scale_offset_and_fill(tmp_path, capsys):
    raw, want = packed_reflectivity((6, 4, 5))  # (time, y, x)
    with h5netcdf.File(tmp_path / "radar.nc", "w") as f:
        f.dimensions = {"time": 6, "y": 4, "x": 5}
        var = f.create_variable("reflectivity", ("time", "y", "x"), dtype="i2", fillvalue=np.int16(-999))
        var[...] = raw
        var.attrs.update(PACKED)
        f.create_variable("time", ("time",), data=np.arange(6.0))
    data, record, _ = converted(capsys, tmp_path / "radar.nc", out_file(tmp_path), "--variable", "reflectivity")
    assert data.shape == (1, 6, 1, 4, 5) and data.dtype == np.float32
    np.testing.assert_array_equal(data[0, :, 0], want)
    assert record["units"] == "dBZ" and record["dimensions"] == ["time", "y", "x"]
    assert record["scale_factor"] == 0.5 and record["add_offset"] == -32.0 and record["non_finite_values"] == 2
    line = refused(capsys, tmp_path / "radar.nc", tmp_path / "refused" / "out.npy", "--variable", "dbz")
    assert "no variable 'dbz'" in line and "reflectivity (time, y, x)" in line and "time (time)" in line


def test_classic_netcdf_with_a_sequence_dimension_and_fill_option(tmp_path, capsys):
    raw, want = packed_reflectivity((3, 4, 2, 3))  # (sample, time, y, x)
    with netcdf_file(tmp_path / "radar.nc", "w") as f:
        for name, size in zip(("sample", "time", "y", "x"), raw.shape):
            f.createDimension(name, size)
        var = f.createVariable("dbz", "h", ("sample", "time", "y", "x"))
        var[:] = raw
        var._FillValue = np.int16(-999)
        for key, value in PACKED.items():
            setattr(var, key, value)
    data, record, _ = converted(capsys, tmp_path / "radar.nc", out_file(tmp_path), "--fill", "-32")
    np.testing.assert_array_equal(data[:, :, 0], np.where(np.isnan(want), np.float32(-32), want))
    assert record["non_finite_values"] == 0 and record["fill"] == -32.0 and record["source_layout"] == "NTHW"


def test_classic_netcdf_record_variables_interleaved_in_the_file(tmp_path, capsys):
    """An unlimited time dimension stores the record variables interleaved, time step by time step."""
    rain, wind = RNG.normal(size=(5, 3, 4)).astype(np.float32), RNG.normal(size=(5, 3, 4)).astype(np.float32)
    with netcdf_file(tmp_path / "r.nc", "w") as f:
        f.createDimension("time", None)
        f.createDimension("y", 3)
        f.createDimension("x", 4)
        for name, values in (("rain", rain), ("wind", wind)):
            f.createVariable(name, "f", ("time", "y", "x"))[:] = values
    data, record, _ = converted(capsys, tmp_path / "r.nc", out_file(tmp_path), "--variable", "wind")
    np.testing.assert_array_equal(data[0, :, 0], wind)
    assert record["source_layout"] == "THW" and record["missing_values"] == []


def test_corrupt_netcdf_files_are_refused(tmp_path, capsys):
    write_example_sources(str(tmp_path))
    whole = (tmp_path / "radar.nc").read_bytes()
    (tmp_path / "radar.nc").write_bytes(whole[:len(whole) // 3])
    line = refused(capsys, tmp_path / "radar.nc", out_file(tmp_path), "--variable", "reflectivity")
    assert f"{tmp_path / 'radar.nc'}:" in line and "corrupt or truncated" in line
    (tmp_path / "classic.nc").write_bytes(b"CDF\x01" + bytes(7))
    line = refused(capsys, tmp_path / "classic.nc", out_file(tmp_path))
    assert f"{tmp_path / 'classic.nc'}: not a readable NetCDF file" in line


# ---------------------------------------------------------------- converted data trained and evaluated

def convert_script(*args):
    proc = subprocess.run([sys.executable, "-m", "src.data.convert", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("train with: python train.py "))
    return shlex.split(line[len("train with: python train.py "):])


def moving_squares(n, t, size):
    """(N, T, size, size) uint8: a bright square moving one pixel a frame."""
    frames = np.zeros((n, t, size, size), np.uint8)
    for i in range(n):
        for k in range(t):
            y, x = (2 + i + k) % (size - 4), (1 + 2 * i + k) % (size - 4)
            frames[i, k, y:y + 4, x:x + 4] = 200
    return frames


def train_and_evaluate(options, run_dir):
    ok_script("train.py", *options, *TINY, "--output_dir", run_dir)
    ok_script("eval.py", "--ckpt_file", run_dir / "ckpt" / "last.ckpt", "--output_dir", run_dir / "eval")
    return json.loads((run_dir / "eval" / "metrics.json").read_text())


@pytest.mark.slow
def test_a_converted_png_folder_trains_and_evaluates(tmp_path):
    save_frames(tmp_path / "frames", moving_squares(6, 8, 16))
    options = convert_script(tmp_path / "frames", tmp_path / "frames.npy")
    assert options[options.index("--input_frames") + 1] == "4" and "--data_scale" not in options
    report = train_and_evaluate(options, tmp_path / "run")
    assert report["dataset"] == "sequences" and report["num_sequences"] == 1  # 6 sequences: 4 / 1 / 1
    assert report["data_path"] == str(tmp_path / "frames.npy")


@pytest.mark.slow
def test_a_converted_hdf5_file_trains_and_evaluates_with_the_printed_scaling(tmp_path):
    with h5py.File(tmp_path / "rain.h5", "w") as f:
        f["dbz"] = dbz = RainCells(6, 8, 16, seed=1).block(0, 6)  # (N, T, C, H, W) float32 dBZ
        f["dbz"].attrs["units"] = "dBZ"
    options = convert_script(tmp_path / "rain.h5", tmp_path / "rain.npy", "--dataset", "dbz")
    assert options[options.index("--data_scale") + 1] == "minmax"
    assert float(options[options.index("--data_min") + 1]) == pytest.approx(float(dbz.min()), rel=1e-6)
    assert float(options[options.index("--data_max") + 1]) == pytest.approx(float(dbz.max()), rel=1e-6)
    report = train_and_evaluate(options, tmp_path / "run")
    assert report["dataset"] == "sequences" and np.isfinite(report["mse"])


def write_example_sources(root):
    """The inputs of docs/own_data.md's converter examples, made small under ``root`` (once): my_video/
    (6 sequences of 10 grey 16x16 PNG frames), radar.h5 (ODIM-like, 8 scans) and radar.nc (packed dBZ)."""
    if not os.path.isdir(os.path.join(root, "my_video")):
        save_frames(Path(root) / "my_video", moving_squares(6, 10, 16))
    if not os.path.isfile(os.path.join(root, "radar.h5")):
        odim_like(os.path.join(root, "radar.h5"), RNG.integers(0, 255, (8, 16, 16), dtype=np.uint8))
    if not os.path.isfile(os.path.join(root, "radar.nc")):
        raw, _ = packed_reflectivity((8, 16, 16))
        with h5netcdf.File(os.path.join(root, "radar.nc"), "w") as f:
            f.dimensions = {"time": 8, "y": 16, "x": 16}
            var = f.create_variable("reflectivity", ("time", "y", "x"), dtype="i2", fillvalue=np.int16(-999))
            var[...] = raw
            var.attrs.update(PACKED)
    if not os.path.isfile(os.path.join(root, "radar_gaps.nc")):
        write_radar_with_gaps(os.path.join(root, "radar_gaps.nc"))


def write_radar_with_gaps(path, sequences=10, frames=8, size=16):
    """docs/own_data.md's no-data example: packed dBZ rain cells (sample, time, y, x) whose corner of every frame
    of every other sequence, and some scattered pixels, hold the _FillValue (no measurement)."""
    from src.data.rain_cells import RainCells

    dbz = RainCells(sequences, frames, size, seed=5).block(0, sequences)[:, :, 0]  # (N, T, H, W)
    raw = np.round((dbz + 32.0) / 0.5).astype(np.int16)
    gaps = np.random.default_rng(6).random(raw.shape) < 0.03
    gaps[::2, :, :5, :6] = True
    raw[gaps] = -999
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"sample": sequences, "time": frames, "y": size, "x": size}
        var = f.create_variable("reflectivity", ("sample", "time", "y", "x"), dtype="i2", fillvalue=np.int16(-999))
        var[...] = raw
        var.attrs.update(PACKED)
