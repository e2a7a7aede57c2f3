"""Exported model files: ``writer`` (export_network), ``model_info`` (read_model_info: signature and
stored config) and ``bin_files`` (the Ascend 310 app's raw float32 .bin files)."""
from src.errors import UserError


class ExportError(UserError):
    """The network cannot be exported in the requested format on this backend."""


class ModelFileError(UserError):
    """An exported model file is missing, unreadable or has an unexpected signature."""
