"""src/export/model_info.py: signature and stored config of exported files, bad files refused
in one line (the files written by export.py itself are read in tests/test_export_writer.py)."""
import json

import numpy as np
import pytest

from src.export import ModelFileError
from src.export.model_info import CONFIG_INFO_KEY, DATA_RECORD_KEY, read_mindir_info, read_onnx_info
from tests.exported_models import tiny_config
from tests.onnx_builder import identity_model, with_metadata

SIGNATURE = (2, 10, 1, 32, 32)


def _onnx_file(tmp_path, data, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_onnx_signature_and_stored_config_are_read(tmp_path):
    cfg = tiny_config(tmp_path, image_size=32, hidden_channels=[4, 8])
    path = _onnx_file(tmp_path, with_metadata(identity_model(SIGNATURE), {CONFIG_INFO_KEY: cfg.to_yaml()}))
    info = read_onnx_info(path)
    assert (info.file_format, info.input_name, info.input_shape, info.output_shape) == ("ONNX", "x", SIGNATURE,
                                                                                       SIGNATURE)
    assert (info.batch_size, info.input_frames, info.output_frames, info.image_size) == (2, 10, 10, 32)
    assert info.config.hidden_channels == [4, 8] and info.config.to_dict() == cfg.to_dict()


def test_the_data_record_is_read_when_present_and_none_when_absent_or_unreadable(tmp_path):
    cfg = tiny_config(tmp_path, image_size=32)
    record = {"dataset": "sequences", "split": {"mode": "file", "num_sequences": 20, "test": [1, 15]}}
    cases = [(json.dumps(record), record), (None, None), ("{not json", None), ("[1, 2]", None)]
    for k, (text, expected) in enumerate(cases):
        entries = {CONFIG_INFO_KEY: cfg.to_yaml(), **({DATA_RECORD_KEY: text} if text is not None else {})}
        path = _onnx_file(tmp_path, with_metadata(identity_model(SIGNATURE), entries), f"m{k}.onnx")
        assert read_onnx_info(path).data_record == expected, text


@pytest.mark.parametrize("metadata", [{}, {CONFIG_INFO_KEY: "arch: [not, a, config"},
                                      {CONFIG_INFO_KEY: "no_such_key: 3\n"}])
def test_onnx_without_a_readable_config_is_refused(tmp_path, metadata):
    path = _onnx_file(tmp_path, with_metadata(identity_model(SIGNATURE), metadata))
    with pytest.raises(ModelFileError, match="carries no readable ConvLSTM config") as err:
        read_onnx_info(path)
    assert "\n" not in str(err.value)


def _mindir_like_bytes():
    from mindspore.train import mind_ir_pb2

    mindir = mind_ir_pb2.ModelProto()
    mindir.ir_version = "1"
    mindir.producer_name = "MindSpore"
    return mindir.SerializeToString()


@pytest.mark.parametrize("content, fragment", [
    (b"", "not an ONNX model file"),
    (np.arange(10, dtype=np.uint8).tobytes() * 7, "not an ONNX model file"),
    (b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'}", "not an ONNX model file"),
    (identity_model((2, 10, 32, 32)), "expected one input (B, T_in, C, H, W)"),
    (identity_model(("batch", 10, 1, 32, 32)), "dynamic input shape"),
    (identity_model(SIGNATURE, elem_type=11), "must be float32"),
])
def test_bad_onnx_files_are_refused_in_one_line(tmp_path, content, fragment):
    with pytest.raises(ModelFileError) as err:
        read_onnx_info(_onnx_file(tmp_path, content))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_mindir_given_as_onnx_and_the_reverse_name_the_right_option(tmp_path):
    with pytest.raises(ModelFileError, match="not an ONNX model file.*pass a .mindir as --mindir_file"):
        read_onnx_info(_onnx_file(tmp_path, _mindir_like_bytes(), "model.mindir"))
    with pytest.raises(ModelFileError, match="is an ONNX file; pass it as --onnx_file"):
        read_mindir_info(_onnx_file(tmp_path, identity_model(SIGNATURE)))


def test_missing_files_and_directories_name_the_option(tmp_path):
    with pytest.raises(ModelFileError, match="--onnx_file .*missing.onnx not found .*--file_format ONNX"):
        read_onnx_info(str(tmp_path / "missing.onnx"))
    with pytest.raises(ModelFileError, match="--mindir_file .* is a directory"):
        read_mindir_info(str(tmp_path))
    with pytest.raises(ModelFileError, match="no model given: pass --onnx_file"):
        read_onnx_info("")


def test_onnx_signature_leaves_out_weights_listed_as_inputs(tmp_path):
    from tests.onnx_builder import conv_transpose_model

    cfg = tiny_config(tmp_path)
    model = conv_transpose_model(np.ones((2, 3, 4, 4), np.float32), (1, 2, 3, 3), [6, 6], extra_input=True)
    path = _onnx_file(tmp_path, with_metadata(model, {CONFIG_INFO_KEY: cfg.to_yaml()}))
    with pytest.raises(ModelFileError, match=r"has inputs \[\(1, 2, 3, 3\)\] and outputs \[\(1, 3, 6, 6\)\]"):
        read_onnx_info(path)  # refused as 4-d, but with the weight W not counted as an input
