"""Export a network to MINDIR, ONNX or AIR atomically (a failed export leaves no partial file), with
its config and signature in a MINDIR's ``user_info`` / an ONNX model's ``metadata_props``.
ONNX uses ``mindspore.onnx.export`` (``mindspore.export(..., "ONNX")`` is deprecated)."""
# MindSpore and src.models are imported inside functions: export.py refuses a bad --file_format before
# MindSpore loads.
import contextlib
import json
import os
import shutil
import tempfile

import numpy as np

from src.errors import ConfigError, first_line
from src.export import ExportError
from src.io import atomic_path, move_into_place
from src.export.model_info import (CONFIG_INFO_KEY, DATA_RECORD_KEY, EXTENSIONS, model_input_shape,
                                   model_output_shape, onnx_package)

INPUT_NAME, OUTPUT_NAME = "frames", "predictions"  # ONNX graph input / output names
# MindSpore's export refuses file names outside this character set (see check_file_name_by_regular)
_EXPORT_NAME_CHARS = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ@_-.:/\\")


def check_export_format(file_format, device_target):
    if file_format not in EXTENSIONS:
        raise ConfigError(f"config key 'file_format': {file_format!r} is not one of {', '.join(EXTENSIONS)}")
    if file_format == "AIR" and device_target != "Ascend":
        raise ExportError(f"file_format AIR needs the Ascend backend (device_target is {device_target}); "
                          "export MINDIR instead (the Ascend 310 app loads MINDIR) or run export.py on Ascend")


def _mindir_info_writer(entries):
    """``custom_func`` for mindspore.export: ``entries`` into user_info (a map, or a repeated list in some builds)."""
    def write(model_proto):
        for key, value in entries.items():
            try:
                model_proto.user_info[key] = value
            except TypeError:
                model_proto.user_info.add(key=key, value=value)
    return write


@contextlib.contextmanager
def onnx_exportable(net):
    """Inside: the network's gate GroupNorms use primitive operators (see GateNorm)."""
    from src.models.convlstm_cell import GateNorm

    norms = [cell for _, cell in net.cells_and_names() if isinstance(cell, GateNorm)]
    before = [norm.primitive_ops for norm in norms]
    for norm in norms:
        norm.primitive_ops = True
    try:
        yield
    finally:
        for norm, value in zip(norms, before):
            norm.primitive_ops = value


def fix_conv_transpose_output_shape(model):
    """Cut every ConvTranspose's ``output_shape`` to its spatial dims (returns how many): MindSpore 2.8 writes
    (N, C, H, W), which ONNX Runtime refuses ("Attribute output_shape has incorrect size")."""
    count = 0
    for node in model.graph.node:
        attributes = {a.name: a for a in node.attribute}
        if node.op_type != "ConvTranspose" or not {"output_shape", "kernel_shape"} <= set(attributes):
            continue
        shape, spatial = list(attributes["output_shape"].ints), len(attributes["kernel_shape"].ints)
        if len(shape) == spatial + 2:
            del attributes["output_shape"].ints[:]
            attributes["output_shape"].ints.extend(shape[2:])  # (N, C, H, W) -> (H, W)
            count += 1
    return count


def _write_onnx(net, example, path, entries):
    """mindspore.onnx.export + the ConvTranspose repair + ``entries`` in metadata_props, then onnx.checker."""
    import mindspore as ms

    onnx = onnx_package()
    with onnx_exportable(net):
        ms.onnx.export(net, example, file_name=path, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME])
    if not os.path.isfile(path):  # the exporter logs write errors instead of raising them
        return
    model = onnx.load(path)
    fix_conv_transpose_output_shape(model)
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"the exported ONNX model fails onnx.checker: {first_line(err)}") from None
    onnx.save(model, path)


def _write(net, example, path, file_format, entries):
    import mindspore as ms

    if file_format == "ONNX":
        return _write_onnx(net, example, path, entries)
    extra = {"custom_func": _mindir_info_writer(entries)} if file_format == "MINDIR" else {}
    ms.export(net, example, file_name=path, file_format=file_format, **extra)


@contextlib.contextmanager
def _staged_file(final, ext):
    """A scratch file moved to ``final`` when the block succeeds. Next to ``final`` the rename is atomic;
    MindSpore refuses paths with e.g. spaces: then the system temp directory and a copy."""
    target_dir = os.path.dirname(final)
    same_dir = set(target_dir) <= _EXPORT_NAME_CHARS
    scratch = tempfile.mkdtemp(prefix=".export-", dir=target_dir) if same_dir else \
        tempfile.mkdtemp(prefix="convlstm-export-")
    scratch_file = os.path.join(scratch, "model" + ext)
    try:
        yield scratch_file
        if same_dir:
            move_into_place(scratch_file, final)
        else:
            with atomic_path(final) as staged:  # another file system: copy next to the target first
                shutil.copyfile(scratch_file, staged)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def export_network(net, cfg, batch_size, file_name, file_format="MINDIR", data_record=None):
    """Export ``net`` with a fixed (batch_size, T_in, C, H, W) float32 input; returns (path, input_shape,
    output_shape). ``data_record``: the checkpoint's (its split of record), carried into the file. On failure
    no file is left and an :class:`ExportError` with a one-line reason is raised."""
    import mindspore as ms

    check_export_format(file_format, cfg.device_target)
    input_shape, output_shape = model_input_shape(cfg, batch_size), model_output_shape(cfg, batch_size)
    ext = EXTENSIONS[file_format]  # MindSpore appends it unless present
    final = os.path.abspath(file_name if file_name.endswith(ext) else file_name + ext)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    example = ms.Tensor(np.zeros(input_shape, dtype=np.float32))
    entries = {CONFIG_INFO_KEY: cfg.to_yaml(), "input_shape": ",".join(map(str, input_shape)),
               "output_shape": ",".join(map(str, output_shape))}
    if data_record:
        entries[DATA_RECORD_KEY] = json.dumps(data_record)
    syntax_level = ms.get_context("jit_syntax_level")
    try:
        with _staged_file(final, ext) as scratch_file:
            try:
                _write(net, example, scratch_file, file_format, entries)
            except (RuntimeError, ValueError, TypeError, KeyError, NotImplementedError) as err:
                hint = ("; MindSpore's ONNX exporter does not cover every operator of this network: export MINDIR "
                        "instead") if file_format == "ONNX" else ""
                raise ExportError(f"{file_format} export failed ({first_line(err).rstrip('.;')}){hint}") from None
            if not os.path.isfile(scratch_file):
                raise ExportError(f"{file_format} export wrote no file (expected {scratch_file})")
    finally:
        ms.set_context(jit_syntax_level=syntax_level)  # export changes it and does not restore it on error
    return final, input_shape, output_shape
