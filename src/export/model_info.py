"""The signature and stored config (yaml under ``CONFIG_INFO_KEY``) of an exported model, read without
compiling it. A MINDIR without a config (written elsewhere) falls back to the defaults; an ONNX file
without one is refused: eval_onnx.py and predict.py rely on it, and export.py always writes it. The stored
config's frame keys are the frame the file maps: the training data's, or the deployment frame export.py was
given (--export_height/--export_width, src.config.deployment_config), so no reader needs the training size."""
# MindSpore (mind_ir_pb2) and onnx are imported inside the readers that need them: an ONNX file is read without
# MindSpore.
import json
import os
from dataclasses import dataclass
from typing import Optional

import yaml

from src.cli import overrides_argv
from src.config import Config, config_from_dict, frame_shape, load_config, output_frame_shape, resolve_config
from src.errors import ConfigError
from src.export import ModelFileError

CONFIG_INFO_KEY = "convlstm_config_yaml"  # user_info / metadata_props entry holding the config
DATA_RECORD_KEY = "convlstm_data_record_json"  # the checkpoint's data record (own sequences: split of record)
EXTENSIONS = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}
OPTION_OF_FORMAT = {"MINDIR": "--mindir_file", "ONNX": "--onnx_file"}


def model_input_shape(cfg, batch_size):
    return (int(batch_size), cfg.input_frames) + tuple(frame_shape(cfg))  # (B, T_in, C, H, W)


def model_output_shape(cfg, batch_size):
    return (int(batch_size), cfg.output_frames) + tuple(output_frame_shape(cfg))  # (B, T_out, C_out, H, W)


def _frames_text(input_shape, output_shape):
    text = f"{input_shape[1]} -> {output_shape[1]} frames of {'x'.join(map(str, input_shape[2:]))}"
    return text if input_shape[2] == output_shape[2] else f"{text} -> {'x'.join(map(str, output_shape[2:]))}"


def config_for_model(info, overrides):
    """The config stored in an exported model (else the defaults with the graph's frame counts and size)
    resolved with the command line's config ``overrides``; it must match the model's signature."""
    base = info.config or load_config().replace(image_size=info.image_size)
    base = base.replace(input_frames=info.input_frames, output_frames=info.output_frames)
    cfg = resolve_config(overrides_argv(overrides), base, info.path)
    want = model_input_shape(cfg, info.batch_size), model_output_shape(cfg, info.batch_size)
    if want != (info.input_shape, info.output_shape):
        raise ConfigError(f"model {info.path} maps {_frames_text(info.input_shape, info.output_shape)} (C x H x W) "
                          f"but the config asks for {_frames_text(*want)}; drop the conflicting keys")
    return cfg


@dataclass(frozen=True)
class ModelInfo:
    """Signature of an exported model: one input (B, T_in, C, H, W), one output (B, T_out, C, H, W)."""

    path: str
    file_format: str  # MINDIR | ONNX
    input_shape: tuple
    output_shape: tuple
    config: Optional[Config]
    input_name: str = ""  # ONNX: the name to feed
    data_record: Optional[dict] = None  # what it was trained on (src.data.split_record); None: not recorded

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
        return self.input_shape[-1]  # Moving MNIST frames are square


def check_model_file(path, file_format="MINDIR"):
    """ModelFileError unless ``path`` is an existing file (the option name is in the message)."""
    option, ext = OPTION_OF_FORMAT[file_format], EXTENSIONS[file_format]
    if not path:
        raise ModelFileError(f"no model given: pass {option} PATH (a {ext} written by export.py)")
    if os.path.isdir(path):
        raise ModelFileError(f"{option} {path} is a directory; pass the {ext} file written by export.py")
    if not os.path.isfile(path):
        raise ModelFileError(f"{option} {path} not found (write one with export.py --ckpt_file CKPT"
                             f"{' --file_format ONNX' if file_format == 'ONNX' else ''})")


def _stored_config(text, path):
    """(config stored in a model file or None, why not): absent, or unreadable by this version."""
    if not text:
        return None, "no stored config"
    try:
        return config_from_dict(yaml.safe_load(text), f"model {path}"), ""
    except ConfigError as err:
        return None, str(err)
    except (yaml.YAMLError, AttributeError, TypeError):
        return None, "the stored config is not a yaml mapping"


def _stored_data_record(text):
    """The data record export.py copied from the checkpoint, or None (absent, or unreadable: then the data
    are checked as for a model that records none)."""
    try:
        record = json.loads(text) if text else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _check_signature(path, inputs, outputs):
    """inputs/outputs: lists of dims tuples; one 5-d input and output of fixed size expected."""
    if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0]) != 5 or len(outputs[0]) != 5:
        raise ModelFileError(f"{path} has inputs {inputs} and outputs {outputs}; expected one input "
                             "(B, T_in, C, H, W) and one output (B, T_out, C, H, W) as written by export.py")
    if not all(isinstance(d, int) and d >= 1 for d in inputs[0] + outputs[0]):
        raise ModelFileError(f"{path} has a dynamic input shape {inputs[0]}; export it with a fixed batch size")


def _parse_model_file(path, parse, unreadable):
    """``parse(bytes)`` of the file; ModelFileError ``unreadable`` when that fails."""
    try:
        with open(path, "rb") as f:
            return parse(f.read())
    except Exception:  # noqa: BLE001 - protobuf raises DecodeError or RuntimeError by implementation
        raise ModelFileError(unreadable) from None


def read_mindir_info(path):
    """Signature and stored config of a MINDIR file."""
    from mindspore.train import mind_ir_pb2

    check_model_file(path, "MINDIR")
    if path.endswith(EXTENSIONS["ONNX"]):
        raise ModelFileError(f"{path} is an ONNX file; pass it as --onnx_file")
    proto = _parse_model_file(path, mind_ir_pb2.ModelProto.FromString,
                              f"{path} is not a readable MINDIR file (truncated, encrypted or another format); "
                              "export it again with export.py")
    graph = proto.graph
    inputs = [tuple(int(d) for d in t.dims) for i in graph.input for t in i.tensor]
    outputs = [tuple(int(d) for d in t.dims) for o in graph.output for t in o.tensor]
    _check_signature(path, inputs, outputs)
    info = _user_info(proto)
    config, _ = _stored_config(info.get(CONFIG_INFO_KEY), path)  # None: predict.py uses defaults
    return ModelInfo(path, "MINDIR", inputs[0], outputs[0], config,
                     data_record=_stored_data_record(info.get(DATA_RECORD_KEY)))


def _user_info(proto):
    """``user_info`` of a MINDIR as a plain dict (map or repeated-entry representation)."""
    entries = list(proto.user_info)
    if entries and hasattr(entries[0], "key"):
        return {e.key: e.value for e in entries}
    return {k: proto.user_info[k] for k in entries}


def onnx_package():
    """The ``onnx`` package, or one line saying how to install it. MindSpore's protobuf modules load only
    under the pure-Python protobuf backend (``import mindspore`` selects it): onnx imported first must too."""
    os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
    try:
        import onnx
    except ImportError:
        raise ModelFileError("ONNX files are read and written with the onnx package, which is not installed: "
                             "pip install -r requirements-onnx.txt") from None
    return onnx


def _value_info(info):
    """(name, elem_type, dims) of an ONNX ValueInfoProto; a symbolic dim is its name (str)."""
    tensor = info.type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim)
    return info.name, tensor.elem_type, dims


def read_onnx_info(path):
    """Signature and stored config of an ONNX file written by export.py, read without a session."""
    check_model_file(path, "ONNX")
    onnx = onnx_package()
    not_onnx = (f"{path} is not an ONNX model file (truncated or another format); write one with export.py "
                "--file_format ONNX" + ("; pass a .mindir as --mindir_file" if path.endswith(".mindir") else ""))
    model = _parse_model_file(path, onnx.load_from_string, not_onnx)
    if model.ir_version <= 0 or not model.HasField("graph"):  # a MINDIR (protobuf too) parses with ir_version 0
        raise ModelFileError(not_onnx)
    weights = {t.name for t in model.graph.initializer}  # some exporters list weights as inputs too
    inputs = [_value_info(v) for v in model.graph.input if v.name not in weights]
    outputs = [_value_info(v) for v in model.graph.output]
    if any(elem_type != onnx.TensorProto.FLOAT for _, elem_type, _ in inputs + outputs):
        raise ModelFileError(f"{path}: inputs and outputs must be float32; write the model with export.py")
    _check_signature(path, [dims for _, _, dims in inputs], [dims for _, _, dims in outputs])
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    config, problem = _stored_config(metadata.get(CONFIG_INFO_KEY), path)
    if config is None:
        raise ModelFileError(f"{path} carries no readable ConvLSTM config (metadata '{CONFIG_INFO_KEY}': {problem}); "
                             "export it with this project's export.py --file_format ONNX")
    return ModelInfo(path, "ONNX", inputs[0][2], outputs[0][2], config, input_name=inputs[0][0],
                     data_record=_stored_data_record(metadata.get(DATA_RECORD_KEY)))


def read_model_info(path, file_format):
    """:func:`read_mindir_info` or :func:`read_onnx_info` by ``file_format`` (MINDIR | ONNX)."""
    return read_onnx_info(path) if file_format == "ONNX" else read_mindir_info(path)
