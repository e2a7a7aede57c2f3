"""src/export/bin_files.py and the Ascend 310 launcher's argument checks (the round trip
preprocess -> predict.py --bin_dir -> postprocess is in tests/test_predict.py)."""
import numpy as np
import pytest

from src.errors import DataError
from tests.exported_models import run_script


def test_read_bin_checks_the_size(tmp_path):
    from src.export.bin_files import read_bin, write_bin

    path = str(tmp_path / "short.bin")
    write_bin(path, np.zeros((1, 9, 1, 64, 64)))
    with pytest.raises(DataError, match="expected 163840"):
        read_bin(path, (1, 10, 1, 64, 64))


def test_bin_files_round_trip_raw_float32(tmp_path):
    from src.export.bin_files import read_bin, result_file_name, write_bin

    data = np.random.default_rng(0).random((2, 3, 1, 4, 4))  # float64 in, float32 on disk
    path = write_bin(str(tmp_path / "seq_00007.bin"), data)
    assert (tmp_path / "seq_00007.bin").stat().st_size == data.size * 4  # no header
    np.testing.assert_array_equal(read_bin(path, data.shape), data.astype(np.float32))
    assert result_file_name(path) == "seq_00007_0.bin"
    with pytest.raises(DataError, match="not found"):
        read_bin(str(tmp_path / "missing.bin"), data.shape)


def test_run_infer_310_without_arguments_prints_usage():
    proc = run_script(["scripts/run_infer_310.sh"], timeout=30)
    assert proc.returncode == 1
    assert proc.stdout.startswith("Usage: bash scripts/run_infer_310.sh [MINDIR_PATH] [DATA_PATH] [DEVICE_ID]")


def test_run_infer_310_checks_the_model_path(tmp_path):
    proc = run_script(["scripts/run_infer_310.sh", str(tmp_path / "missing.mindir"), str(tmp_path)], timeout=30)
    assert proc.returncode == 1
    assert "error: MINDIR_PATH" in proc.stdout and "not found" in proc.stdout
