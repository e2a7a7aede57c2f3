"""A folder of image frames as a :class:`Source`: one sub-folder per sequence (or the folder itself holding the
frames of one sequence), frames in natural order of their file names (frame2 before frame10).

PNG and JPEG are read with Pillow, TIFF with tifffile (both come with scikit-image): 8- and 16-bit, grey or
colour (an alpha channel is dropped; palette, CMYK and YCbCr images become RGB), 32-bit float TIFF too. Every
frame's header is read before anything is written, so frames of another size, bit depth or channel count, and
sequences with another number of frames, are refused in one line naming the file.
"""
import collections
import os
from dataclasses import dataclass, replace

import numpy as np

from src.data.convert.source import Source, natural_sorted, require
from src.errors import DataError, first_line

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
TIFF_EXTENSIONS = (".tif", ".tiff")
FORMATS = "PNG, JPEG or TIFF: " + ", ".join(IMAGE_EXTENSIONS)
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, the weights of Pillow's convert("L")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pillow mode -> (channels, dtype, bits per sample, mode to convert to before reading the pixels)
_PIL_MODES = {
    "1": (1, "uint8", 8, "L"),  # bilevel: 0 / 255
    "L": (1, "uint8", 8, None),
    "LA": (1, "uint8", 8, "L"),
    "P": (3, "uint8", 8, "RGB"),
    "PA": (3, "uint8", 8, "RGB"),
    "RGB": (3, "uint8", 8, None),
    "RGBA": (3, "uint8", 8, "RGB"),
    "CMYK": (3, "uint8", 8, "RGB"),
    "YCbCr": (3, "uint8", 8, "RGB"),
    "I;16": (1, "uint16", 16, None),
    "I;16L": (1, "uint16", 16, None),
    "I;16B": (1, "uint16", 16, None),
    "I;16N": (1, "uint16", 16, None),
    "I": (1, "uint16", 16, None),  # a 16-bit grey PNG as 32-bit integers: values checked to fit 16 bits
    "F": (1, "float32", 32, None),
}
# TIFF sample dtype -> (dtype written, bits per sample)
_TIFF_DTYPES = {"bool": ("uint8", 1), "uint8": ("uint8", 8), "uint16": ("uint16", 16),
                "float32": ("float32", 32), "float64": ("float32", 64)}
_SAMPLES_TO_CHANNELS = {1: 1, 2: 1, 3: 3, 4: 3}  # grey, grey + alpha, colour, colour + alpha


@dataclass(frozen=True)
class FrameInfo:
    """What a frame's header says: size, channels (alpha dropped), the dtype its pixels are read as, bits."""

    height: int
    width: int
    channels: int
    dtype: str
    bits: int

    def colour(self):
        return "grey (1 channel)" if self.channels == 1 else f"colour ({self.channels} channels)"


# ---------------------------------------------------------------- one frame

def _unreadable(path, err):
    return DataError(f"{path}: not a readable image ({first_line(err)}; corrupt or truncated file?); replace or "
                     "remove it")


def _png_refusal(path):
    """Why a PNG cannot be read exactly, or None: Pillow reduces 16-bit colour PNGs to 8 bits silently."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError as err:
        raise _unreadable(path, err) from None
    if len(head) == 26 and head.startswith(_PNG_SIGNATURE) and head[24] == 16 and head[25] != 0:
        return (f"{path}: a 16-bit colour PNG, which Pillow reads only to 8 bits; save the frames as 16-bit TIFF "
                "(or as 16-bit grey PNG)")
    return None


def _probe_pillow(path):
    image_module = require("PIL.Image", "reading PNG/JPEG frames")
    refusal = _png_refusal(path)
    if refusal:
        raise DataError(refusal)
    try:
        with image_module.open(path) as image:
            mode, (width, height), frames = image.mode, image.size, getattr(image, "n_frames", 1)
    except Exception as err:  # noqa: BLE001 - a parser of arbitrary bytes: any failure means an unreadable file
        raise _unreadable(path, err) from None
    if mode not in _PIL_MODES:
        raise DataError(f"{path}: image mode {mode} is not supported (grey, RGB, RGBA, palette, 16-bit grey); "
                        "save the frames as 8- or 16-bit grey or RGB")
    if frames != 1:
        raise DataError(f"{path}: holds {frames} images (animated?); give one frame per file")
    channels, dtype, bits, _ = _PIL_MODES[mode]
    return FrameInfo(height, width, channels, dtype, bits)


def _read_pillow(path):  # -> (C, H, W)
    image_module = require("PIL.Image", "reading PNG/JPEG frames")
    try:
        with image_module.open(path) as image:
            image.load()
            target = _PIL_MODES.get(image.mode, (0, "", 0, None))[3]
            pixels = np.asarray(image.convert(target) if target else image)
    except Exception as err:  # noqa: BLE001 - see _probe_pillow
        raise _unreadable(path, err) from None
    if pixels.dtype.kind == "b":
        pixels = pixels.astype(np.uint8) * np.uint8(255)
    if pixels.dtype == np.int32:  # mode "I": a 16-bit grey PNG
        if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
            raise DataError(f"{path}: 32-bit integer pixels outside 0..65535; save the frames as 16-bit grey or as "
                            "32-bit float TIFF")
        pixels = pixels.astype(np.uint16)
    pixels = pixels.astype(pixels.dtype.newbyteorder("="), copy=False)  # 'I;16B' is big-endian
    return pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)


def _tiff_layout(path, axes, shape, dtype):
    """The samples per pixel of a TIFF page, or a DataError when the page is no grey or colour 2-D frame."""
    if set(axes) - set("SYX") or "Y" not in axes or "X" not in axes:
        raise DataError(f"{path}: a TIFF page with axes {axes} {tuple(shape)}; give one 2-D frame per file")
    samples = shape[axes.index("S")] if "S" in axes else 1
    if samples not in _SAMPLES_TO_CHANNELS:
        raise DataError(f"{path}: {samples} samples per pixel; frames must be grey or RGB (with or without alpha)")
    if dtype.name not in _TIFF_DTYPES:
        raise DataError(f"{path}: {dtype.name} samples; TIFF frames must be {', '.join(_TIFF_DTYPES)}")
    return samples


def _probe_tiff(path):
    tifffile = require("tifffile", "reading TIFF frames")
    try:
        with tifffile.TiffFile(path) as tif:
            pages, page = len(tif.pages), tif.pages[0]
            axes, shape, dtype = page.axes, page.shape, np.dtype(page.dtype)
    except Exception as err:  # noqa: BLE001 - see _probe_pillow
        raise _unreadable(path, err) from None
    if pages != 1:
        raise DataError(f"{path}: a TIFF of {pages} pages; give one frame per file")
    samples = _tiff_layout(path, axes, shape, dtype)
    dtype_read, bits = _TIFF_DTYPES[dtype.name]
    return FrameInfo(shape[axes.index("Y")], shape[axes.index("X")], _SAMPLES_TO_CHANNELS[samples], dtype_read,
                     bits)


def _read_tiff(path):  # -> (C, H, W)
    tifffile = require("tifffile", "reading TIFF frames")
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            axes, pixels = page.axes, page.asarray()
    except Exception as err:  # noqa: BLE001 - see _probe_pillow
        raise _unreadable(path, err) from None
    order = [axes.index(a) for a in "SYX" if a in axes]
    pixels = np.transpose(pixels, order)
    pixels = pixels if "S" in axes else pixels[None]  # (S, H, W)
    channels = _SAMPLES_TO_CHANNELS.get(len(pixels), len(pixels))
    pixels = pixels[:channels]  # alpha dropped
    if pixels.dtype.kind == "b":
        return pixels.astype(np.uint8) * np.uint8(255)
    return pixels.astype(_TIFF_DTYPES.get(pixels.dtype.name, (pixels.dtype,))[0], copy=False)


def probe_frame(path):
    """The :class:`FrameInfo` of an image file, from its header (pixels not decoded)."""
    return _probe_tiff(path) if path.lower().endswith(TIFF_EXTENSIONS) else _probe_pillow(path)


def read_frame(path):
    """The pixels of an image file as (C, H, W), alpha dropped."""
    return _read_tiff(path) if path.lower().endswith(TIFF_EXTENSIONS) else _read_pillow(path)


def to_grey(pixels):
    """(3, H, W) colour -> (1, H, W) luma of the same dtype (integers rounded): 0.299 R + 0.587 G + 0.114 B."""
    luma = np.tensordot(np.asarray(GREY_WEIGHTS), pixels.astype(np.float64), axes=1)
    if pixels.dtype.kind == "u":
        luma = np.clip(np.rint(luma), 0, np.iinfo(pixels.dtype).max)
    return luma.astype(pixels.dtype)[None]


# ---------------------------------------------------------------- the folder

def _listing(folder):
    """(sub-folders, image files) of ``folder`` in natural order; hidden entries and other files ignored."""
    try:
        names = [n for n in os.listdir(folder) if not n.startswith(".")]
    except OSError as err:
        raise DataError(f"{folder}: cannot list the folder ({err.strerror or err})") from None
    folders = [n for n in names if os.path.isdir(os.path.join(folder, n))]
    images = [n for n in names if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, n))]
    return natural_sorted(folders), natural_sorted(images)


def sequence_folders(root):
    """[(sequence name, [frame paths])]: one per sub-folder of ``root``, or ``root`` itself when it holds the
    frames of one sequence."""
    folders, images = _listing(root)
    if folders and images:
        raise DataError(f"{root} holds image files ({images[0]}, ...) next to sub-folders ({folders[0]}, ...); put the "
                        "frames of each sequence into a sub-folder of their own")
    if not folders and not images:
        raise DataError(f"{root}: no image frames ({FORMATS}) and no sub-folders; expected one sub-folder of frames "
                        "per sequence")
    if images:
        return [(os.path.basename(os.path.abspath(root)), [os.path.join(root, n) for n in images])]
    sequences = []
    for name in folders:
        sub_folders, frames = _listing(os.path.join(root, name))
        if not frames:
            raise DataError(f"{os.path.join(root, name)}: no image frames ({FORMATS}); every sub-folder of {root} is "
                            "one sequence: add its frames or remove the folder")
        sequences.append((name, [os.path.join(root, name, n) for n in frames]))
    return sequences


def _check_frame_counts(root, sequences):
    counts = collections.Counter(len(frames) for _, frames in sequences)
    common = max(counts, key=lambda c: (counts[c], c == len(sequences[0][1])))
    for name, frames in sequences:
        if len(frames) != common:
            example = next(n for n, f in sequences if len(f) == common)
            raise DataError(f"{os.path.join(root, name)}: {len(frames)} frames, but {counts[common]} of the "
                            f"{len(sequences)} sequences have {common} (e.g. {example}); every sequence needs the same "
                            "number of frames (a frame missing or extra?)")
    return common


def _check_same_frames(path, info, first_path, first):
    if (info.height, info.width) != (first.height, first.width):
        raise DataError(f"{path}: {info.height}x{info.width} pixels, but {first_path} has "
                        f"{first.height}x{first.width}; every frame needs the same size (crop or resize them first)")
    if (info.bits, info.dtype) != (first.bits, first.dtype):
        raise DataError(f"{path}: {info.bits}-bit {info.dtype} samples, but {first_path} has {first.bits}-bit "
                        f"{first.dtype}; every frame needs the same bit depth")
    if info.channels != first.channels:
        raise DataError(f"{path}: {info.colour()}, but {first_path} is {first.colour()}; every frame needs the same "
                        "channels: add --grey true to convert every frame to grey")


def _frames_info(sequences, grey):
    """The one :class:`FrameInfo` of every frame (channels 1 with ``grey``), checked across all frames."""
    first_path, first = None, None
    for _, frames in sequences:
        for path in frames:
            info = probe_frame(path)
            info = replace(info, channels=1) if grey else info
            if first is None:
                first_path, first = path, info
            _check_same_frames(path, info, first_path, first)
    return first


def open_image_folder(root, grey=False):
    """The :class:`Source` of a folder of frames (see the module's docstring); ``grey`` converts colour frames
    to one channel of luma."""
    sequences = sequence_folders(root)
    num_frames = _check_frame_counts(root, sequences)
    info = _frames_info(sequences, grey)

    def blocks(index):
        for t, path in enumerate(sequences[index][1]):
            pixels = read_frame(path)
            if grey and len(pixels) == 3:
                pixels = to_grey(pixels)
            yield t, pixels[None]

    record = {"kind": "image frames", "sequences": [name for name, _ in sequences],
              "frame_order": "natural order of the file names (frame2 before frame10)",
              "bit_depth": info.bits, "colour": info.colour(), "converted_to_grey": bool(grey), "units": None}
    shape = (len(sequences), num_frames, info.channels, info.height, info.width)
    return Source(os.fspath(root), shape, np.dtype(info.dtype), blocks, record)
