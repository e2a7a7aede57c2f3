"""Exported model files: writing them, reading what they carry, and the Ascend 310 file I/O.

* ``writer``: ``export_network`` writes MINDIR / ONNX / AIR atomically, with the config the
  network was built from stored inside the file.
* ``model_info``: ``read_model_info`` returns the signature and stored config of a .mindir or
  .onnx file without compiling or running it.
* ``bin_files``: raw float32 ``.bin`` files of the Ascend 310 app, and a CPU stand-in for it.
"""
from src.errors import UserError


class ExportError(UserError):
    """The network cannot be exported in the requested format on this backend."""


class ModelFileError(UserError):
    """An exported model file is missing, unreadable or has an unexpected signature."""
