"""Export and inference shared by export.py, predict.py, preprocess.py and postprocess.py.

* Export: ``export_network`` writes MINDIR / AIR / ONNX through a temporary file that is
  renamed into place, so a failed export never leaves a partial model behind. MINDIR files
  carry the effective config in their ``user_info`` so predict.py knows the frame counts.
* Loading: ``load_mindir`` (``mindspore.load`` + ``nn.GraphCell``, graph mode) and
  ``read_mindir_info`` (input/output shapes and stored config, read from the protobuf
  without compiling anything).
* Running: ``Predictor`` feeds batches of any size to a fixed-batch exported graph (the
  last batch is padded) or to a checkpoint network.
* User arrays: ``load_user_array`` / ``normalise_user_array`` turn a user's ``.npy`` into
  network input or explain, in one line, why they cannot.
* Ascend 310 files: ``write_bin`` / ``read_bin`` (raw float32, C order, no header) and
  ``predict_bin_folder`` (a CPU stand-in for the C++ app, to check the post-processing).
"""
import difflib
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Optional

import numpy as np
import yaml

from src.config import SCHEMA, Config, config_from_dict, parse_overrides
from src.errors import ConfigError, DataError, UserError

EXTENSIONS = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}
CONFIG_INFO_KEY = "convlstm_config_yaml"  # MINDIR user_info entry holding the config
# MindSpore's export refuses file names outside this character set (see check_file_name_by_regular)
_EXPORT_NAME_CHARS = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ@_-.:/\\")
# floats may exceed [0, 1] by rounding only
VALUE_TOLERANCE = 1e-4


class ExportError(UserError):
    """The network cannot be exported in the requested format on this backend."""


class ModelFileError(UserError):
    """An exported model file is missing, unreadable or has an unexpected signature."""


# ---------------------------------------------------------------- command-line options

def split_options(argv, own):
    """Separate script options (``own``: name -> default) from config ``--key value`` pairs.

    Returns (options dict, config overrides dict). Both accept ``--key value`` and ``--key=value``.
    """
    given = parse_overrides(list(argv))
    options = {name: given.pop(name, default) for name, default in own.items()}
    for name in given:  # a mistyped script option would otherwise be reported as an unknown config key
        close = [o for o in own if o.startswith(name)] or difflib.get_close_matches(name, list(own), n=1,
                                                                                     cutoff=0.75)
        if name not in SCHEMA and name != "config_path" and close:
            raise ConfigError(f"unknown option --{name} (did you mean --{close[0]}?)")
    return options, given


def parse_bool(value, name):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"option --{name}: expected true or false, got {value!r}")


def parse_float(value, name):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"option --{name}: expected a number, got {value!r}") from None


def apply_overrides(base, overrides, where="the command line"):
    """``base`` config with command-line values applied (validated, unknown keys refused)."""
    overrides = {k: v for k, v in overrides.items() if k != "config_path"}
    values = dict(base.to_dict(), **overrides)
    return config_from_dict(values, where)


def init_inference_device(cfg):
    """src.device.init_device, with an unavailable backend reported as one line.

    A checkpoint stores the device it was trained on; exporting or predicting on another
    machine needs --device_target for the local backend.
    """
    from src.device import init_device

    try:
        return init_device(cfg)
    except RuntimeError as err:
        if "device target" not in str(err).lower():
            raise
        raise ConfigError(f"device_target {cfg.device_target} is not available in this MindSpore installation "
                          "(the value may come from the checkpoint's config); pass --device_target CPU, GPU or "
                          "Ascend to match this machine") from None


# ---------------------------------------------------------------- export

def model_input_shape(cfg, batch_size):
    """(B, T_in, 1, H, W) of the network built from ``cfg``."""
    return (int(batch_size), cfg.input_frames, 1, cfg.image_size, cfg.image_size)


def model_output_shape(cfg, batch_size):
    """(B, T_out, 1, H, W) of the network built from ``cfg``."""
    return (int(batch_size), cfg.output_frames, 1, cfg.image_size, cfg.image_size)


def export_path(file_name, file_format):
    """The file MindSpore writes for ``file_name``: it appends the extension unless present."""
    ext = EXTENSIONS[file_format]
    return file_name if file_name.endswith(ext) else file_name + ext


def check_export_format(file_format, device_target):
    if file_format not in EXTENSIONS:
        raise ConfigError(f"config key 'file_format': {file_format!r} is not one of {', '.join(EXTENSIONS)}")
    if file_format == "AIR" and device_target != "Ascend":
        raise ExportError(f"file_format AIR needs the Ascend backend (device_target is {device_target}); "
                          "export MINDIR instead (the Ascend 310 app loads MINDIR) or run export.py on Ascend")


def _first_line(err):
    """The first meaningful line of a (possibly multi-line, C++-annotated) exception message."""
    for line in str(err).splitlines():
        line = line.strip()
        if line and not set(line) <= set("-="):
            return line[:300]
    return type(err).__name__


def _export_reason(err, file_format):
    reason = _first_line(err).rstrip(".;")
    if file_format == "ONNX":
        return (f"ONNX export failed ({reason}); MindSpore's ONNX exporter does not cover every operator of "
                "this network: export MINDIR instead")
    return f"{file_format} export failed ({reason})"


def _scratch_dir(target_dir):
    """A temporary directory for the export, in ``target_dir`` when MindSpore accepts its name.

    Same directory means the final rename is atomic; MindSpore refuses paths with e.g. spaces,
    in which case the system temp directory is used and the file is copied over.
    """
    if set(os.path.abspath(target_dir)) <= _EXPORT_NAME_CHARS:
        return tempfile.mkdtemp(prefix=".export-", dir=target_dir)
    return tempfile.mkdtemp(prefix="convlstm-export-")


def _set_user_info(proto, key, value):
    """Set one ``user_info`` entry: a protobuf map, or a repeated (key, value) list in some builds."""
    try:
        proto.user_info[key] = value
    except TypeError:
        proto.user_info.add(key=key, value=value)


def _user_info(proto):
    """``user_info`` of a MINDIR as a plain dict (map or repeated-entry representation)."""
    entries = list(proto.user_info)
    if entries and hasattr(entries[0], "key"):
        return {e.key: e.value for e in entries}
    return {k: proto.user_info[k] for k in entries}


def _mindir_config_writer(cfg, input_shape, output_shape):
    """``custom_func`` for mindspore.export: store config and signature in the MINDIR."""
    def write(model_proto):
        _set_user_info(model_proto, CONFIG_INFO_KEY, cfg.to_yaml())
        _set_user_info(model_proto, "input_shape", ",".join(map(str, input_shape)))
        _set_user_info(model_proto, "output_shape", ",".join(map(str, output_shape)))
    return write


def export_network(net, cfg, batch_size, file_name, file_format="MINDIR"):
    """Export ``net`` with a fixed (batch_size, T_in, 1, H, W) float32 input.

    Returns (path, input_shape, output_shape). The model is written to a scratch directory
    and moved into place only when complete; on failure no file is left and an
    :class:`ExportError` with a one-line reason is raised.
    """
    import mindspore as ms

    check_export_format(file_format, cfg.device_target)
    input_shape = model_input_shape(cfg, batch_size)
    output_shape = model_output_shape(cfg, batch_size)
    final = os.path.abspath(export_path(file_name, file_format))
    target_dir = os.path.dirname(final)
    os.makedirs(target_dir, exist_ok=True)
    scratch = _scratch_dir(target_dir)
    scratch_file = os.path.join(scratch, "model" + EXTENSIONS[file_format])
    kwargs = {}
    if file_format == "MINDIR":
        kwargs["custom_func"] = _mindir_config_writer(cfg, input_shape, output_shape)
    example = ms.Tensor(np.zeros(input_shape, dtype=np.float32))
    syntax_level = ms.get_context("jit_syntax_level")
    try:
        try:
            ms.export(net, example, file_name=scratch_file, file_format=file_format, **kwargs)
        except (RuntimeError, ValueError, TypeError, KeyError, NotImplementedError) as err:
            raise ExportError(_export_reason(err, file_format)) from None
        if not os.path.isfile(scratch_file):
            raise ExportError(f"{file_format} export wrote no file (expected {scratch_file})")
        if os.path.dirname(scratch) == target_dir:
            os.replace(scratch_file, final)
        else:  # scratch on another file system: copy next to the target, then rename
            staged = os.path.join(target_dir, f".tmp-{os.getpid()}-{os.path.basename(final)}")
            try:
                shutil.copyfile(scratch_file, staged)
                os.replace(staged, final)
            finally:
                if os.path.exists(staged):
                    os.remove(staged)
    finally:
        ms.set_context(jit_syntax_level=syntax_level)  # export changes it and does not restore it on error
        shutil.rmtree(scratch, ignore_errors=True)
    return final, input_shape, output_shape


# ---------------------------------------------------------------- exported models

@dataclass(frozen=True)
class MindirInfo:
    """Signature of an exported MINDIR: one input (B, T_in, 1, H, W), one output (B, T_out, 1, H, W)."""

    path: str
    input_shape: tuple
    output_shape: tuple
    config: Optional[Config]

    @property
    def batch_size(self):
        return self.input_shape[0]

    @property
    def input_frames(self):
        return self.input_shape[1]

    @property
    def output_frames(self):
        return self.output_shape[1]

    @property
    def image_size(self):
        return self.input_shape[-1]


def _check_model_file(path, what="--mindir_file"):
    if not path:
        raise ModelFileError(f"no model given: pass {what} PATH (a .mindir written by export.py)")
    if os.path.isdir(path):
        raise ModelFileError(f"{what} {path} is a directory; pass the .mindir file written by export.py")
    if not os.path.isfile(path):
        raise ModelFileError(f"{what} {path} not found (write one with export.py --ckpt_file CKPT)")


def _stored_config(proto, path):
    text = _user_info(proto).get(CONFIG_INFO_KEY)
    if not text:
        return None
    try:
        return config_from_dict(yaml.safe_load(text), f"model {path}")
    except (yaml.YAMLError, ConfigError, AttributeError, TypeError):
        return None  # written by another version: fall back to the graph's shapes


def read_mindir_info(path):
    """Input/output shapes and stored config of a MINDIR file, read without compiling it."""
    from mindspore.train import mind_ir_pb2

    _check_model_file(path)
    proto = mind_ir_pb2.ModelProto()
    try:
        with open(path, "rb") as f:
            proto.ParseFromString(f.read())
    except Exception:  # protobuf raises DecodeError (and others) on damaged files
        raise ModelFileError(f"{path} is not a readable MINDIR file (truncated, encrypted or another format); "
                             "export it again with export.py") from None
    graph = proto.graph
    inputs = [tuple(int(d) for d in t.dims) for i in graph.input for t in i.tensor]
    outputs = [tuple(int(d) for d in t.dims) for o in graph.output for t in o.tensor]
    if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0]) != 5 or len(outputs[0]) != 5:
        raise ModelFileError(f"{path} has inputs {inputs} and outputs {outputs}; expected one input "
                             "(B, T_in, 1, H, W) and one output (B, T_out, 1, H, W) as written by export.py")
    if min(inputs[0]) < 1:
        raise ModelFileError(f"{path} has a dynamic input shape {inputs[0]}; export it with a fixed batch size")
    return MindirInfo(path, inputs[0], outputs[0], _stored_config(proto, path))


def load_mindir(path):
    """``mindspore.load`` + ``nn.GraphCell`` in graph mode; ModelFileError if it cannot be loaded."""
    import mindspore as ms
    from mindspore import nn

    _check_model_file(path)
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        return nn.GraphCell(ms.load(path))
    except (RuntimeError, ValueError, TypeError) as err:
        raise ModelFileError(f"{path} cannot be loaded by MindSpore ({_first_line(err)}); export it again "
                             "with export.py") from None


class Predictor:
    """Runs a network on any number of sequences.

    ``batch_size`` is the number of sequences per call. An exported graph has a fixed batch,
    and a compiled network would compile again for another one: a smaller last batch is
    padded with zeros and the padding is dropped from the output.
    """

    def __init__(self, forward, batch_size, input_shape, output_frames, name=""):
        self.forward = forward  # mindspore Tensor (B, T_in, 1, H, W) -> Tensor (B, T_out, 1, H, W)
        self.batch_size = int(batch_size)
        self.input_shape = tuple(input_shape[1:])  # (T_in, 1, H, W)
        self.output_frames = int(output_frames)
        self.name = name

    @classmethod
    def from_mindir(cls, path):
        info = read_mindir_info(path)
        return cls(load_mindir(path), info.batch_size, info.input_shape, info.output_frames, path), info

    @classmethod
    def from_network(cls, forward, cfg, batch_size, name=""):
        """``forward``: the network, or a compiled function of it (src.training.step.build_predict_fn)."""
        return cls(forward, batch_size, model_input_shape(cfg, batch_size), cfg.output_frames, name)

    def _run(self, batch):
        import mindspore as ms

        out = self.forward(ms.Tensor(batch)).asnumpy()
        if not np.isfinite(out).all():
            raise ModelFileError(f"model {self.name} predicts NaN/inf values (training diverged?); use an earlier "
                                 "checkpoint")
        return out

    def predict(self, inputs):
        """inputs (N, T_in, 1, H, W) float32 in [0, 1] -> predictions (N, T_out, 1, H, W) float32."""
        inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        if inputs.shape[1:] != self.input_shape:
            raise DataError(f"input batch has shape {inputs.shape}; the model expects (N,) + {self.input_shape}")
        outputs = []
        for start in range(0, len(inputs), self.batch_size):
            batch = inputs[start:start + self.batch_size]  # (b, T_in, 1, H, W)
            count = len(batch)
            if count < self.batch_size:
                pad = np.zeros((self.batch_size - count,) + batch.shape[1:], dtype=np.float32)
                batch = np.concatenate([batch, pad])
            outputs.append(self._run(batch)[:count])
        if not outputs:
            return np.zeros((0, self.output_frames) + self.input_shape[1:], dtype=np.float32)
        return np.concatenate(outputs).astype(np.float32, copy=False)


def max_abs_difference(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.abs(a - b).max()) if a.size else 0.0


# ---------------------------------------------------------------- user arrays

def load_user_array(path):
    """Read a user's .npy (no pickles) or explain in one line why not."""
    if not os.path.isfile(path):
        raise DataError(f"input {path} not found (--input expects a .npy file)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err).lower() or "object" in str(err).lower():
            raise DataError(f"input {path} holds Python objects; save a numeric array with np.save") from None
        raise DataError(f"input {path} is not a readable .npy file ({_first_line(err)})") from None
    except (OSError, EOFError) as err:
        raise DataError(f"input {path} is not a readable .npy file ({_first_line(err)})") from None


def normalise_user_array(array, name, input_frames=10, image_size=64):
    """A user's sequences -> network input (N, T_in, 1, H, W) float32 in [0, 1].

    Accepts (N, T_in, H, W), (T_in, H, W) or (N, T_in, 1, H, W); uint8 pixels 0..255 or float
    pixels 0..1 (no NaN/inf). Anything else raises DataError naming ``name``.
    """
    arr = np.asarray(array)
    t, s = input_frames, image_size
    expected = f"expected (N, {t}, {s}, {s}) or ({t}, {s}, {s})"
    if isinstance(array, np.lib.npyio.NpzFile) or arr.dtype == object:
        raise DataError(f"input {name} is not a numeric array; {expected}")
    if arr.ndim == 5 and arr.shape[2] == 1:
        arr = arr[:, :, 0]  # (N, T, 1, H, W) -> (N, T, H, W)
    if arr.ndim == 3:
        arr = arr[None]  # one sequence
    if arr.ndim != 4 or arr.shape[1:] != (t, s, s) or arr.shape[0] == 0:
        raise DataError(f"input {name} has shape {tuple(np.shape(array))}; {expected}")
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif np.issubdtype(arr.dtype, np.floating):
        out = _checked_floats(arr, name)
    else:
        raise DataError(f"input {name} has dtype {arr.dtype}; expected uint8 pixels (0..255) or float pixels "
                        "(0..1), e.g. convert with .astype(np.uint8) or divide by 255.0")
    return np.ascontiguousarray(out[:, :, None], dtype=np.float32)  # (N, T_in, 1, H, W)


def _checked_floats(arr, name):
    finite = np.isfinite(arr)
    if not finite.all():
        bad = "NaN" if np.isnan(arr).any() else "infinite"
        raise DataError(f"input {name} contains {bad} values (at {int((~finite).sum())} of {arr.size} pixels); "
                        "pixels must be finite floats in [0, 1]")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -VALUE_TOLERANCE or hi > 1.0 + VALUE_TOLERANCE:
        hint = " (looks like 0..255: divide by 255.0 or pass uint8)" if hi > 1.5 and lo >= 0 else ""
        raise DataError(f"input {name} has float values in [{lo:g}, {hi:g}]; float pixels must lie in [0, 1]{hint}")
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


# ---------------------------------------------------------------- Ascend 310 binary files

def write_bin(path, array):
    """Raw float32 in C order, no header: what the C++ app reads into a tensor."""
    data = np.ascontiguousarray(array, dtype=np.float32)
    tmp = f"{path}.tmp"
    data.tofile(tmp)
    os.replace(tmp, path)
    return path


def read_bin(path, shape):
    """Read a raw float32 file written by :func:`write_bin` or the C++ app; check its size."""
    if not os.path.isfile(path):
        raise DataError(f"{path} not found")
    expected = int(np.prod(shape)) * 4
    size = os.path.getsize(path)
    if size != expected:
        raise DataError(f"{path} has {size} bytes; expected {expected} (float32 {tuple(shape)})")
    return np.fromfile(path, dtype=np.float32).reshape(shape)


def result_file_name(input_name):
    """Output file the C++ app writes for input ``seq_00000.bin``: ``seq_00000_0.bin`` (output 0)."""
    return os.path.splitext(os.path.basename(input_name))[0] + "_0.bin"


def predict_bin_folder(predictor, input_dir, result_dir):
    """Stand-in for the Ascend 310 app on any backend: every input .bin -> <name>_0.bin.

    Each input file holds b whole sequences (b, T_in, 1, H, W); outputs are written raw float32.
    Returns the number of files processed.
    """
    names = sorted(n for n in os.listdir(input_dir) if n.endswith(".bin"))
    if not names:
        raise DataError(f"no .bin files in {input_dir}; run preprocess.py first")
    os.makedirs(result_dir, exist_ok=True)
    per_sequence = int(np.prod(predictor.input_shape)) * 4  # bytes of one (T_in, 1, H, W) float32 sequence
    for name in names:
        path = os.path.join(input_dir, name)
        count = max(1, os.path.getsize(path) // per_sequence)
        batch = read_bin(path, (count,) + predictor.input_shape)  # (b, T_in, 1, H, W)
        write_bin(os.path.join(result_dir, result_file_name(name)), predictor.predict(batch))
    return len(names)

