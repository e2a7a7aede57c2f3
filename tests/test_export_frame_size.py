"""export.py --export_height/--export_width: a model exported for a deployment frame other than its training
frame. The config rules (src/config.py: deployment_frame, deployment_config, the tiling and peephole checks) and
export.py's refusals: one error line, a non-zero exit, nothing written. The exports of a model trained on crops are
tested end to end in tests/test_own_data_crops.py."""
import os

import pytest

from src.config import deployment_config, deployment_frame, load_config
from src.errors import ConfigError
from tests.exported_models import assert_one_line_error, run_script, save_tiny_checkpoint, tiny_config

OWN_FRAMES = ["--dataset", "sequences", "--channels", "1", "--frame_height", "96", "--frame_width", "96"]


def test_the_deployment_frame_is_the_export_size_each_side_defaulting_to_the_models():
    own = load_config(OWN_FRAMES + ["--export_height", "144", "--export_width", "192"])
    assert deployment_frame(own) == (144, 192)
    assert deployment_frame(load_config(OWN_FRAMES + ["--export_width", "128"])) == (96, 128)
    assert deployment_frame(load_config(OWN_FRAMES)) == (96, 96)
    assert deployment_frame(load_config(["--image_size", "32"])) == (32, 32)  # Moving MNIST: image_size


def test_the_config_an_export_carries_has_the_deployment_frame_as_its_frame():
    own = deployment_config(load_config(OWN_FRAMES + ["--export_height", "144", "--export_width", "192"]))
    assert (own.channels, own.frame_height, own.frame_width) == (1, 144, 192)
    assert (own.export_height, own.export_width) == (0, 0)  # the file's frame is its own: nothing left to change
    mnist = deployment_config(load_config(["--image_size", "32", "--export_height", "64", "--export_width", "64"]))
    assert (mnist.image_size, mnist.frame_height, mnist.export_height) == (64, 0, 0)
    unchanged = load_config(OWN_FRAMES)
    assert deployment_config(unchanged).to_dict() == unchanged.to_dict()


@pytest.mark.parametrize("argv, fragment", [
    (OWN_FRAMES + ["--export_height", "98"], "98x96, but arch paper cuts frames into 4x4 patches"),
    (OWN_FRAMES + ["--arch", "zoo", "--export_width", "130"], "96x130, but arch zoo halves the frames twice"),
    (OWN_FRAMES + ["--patch_size", "8", "--export_height", "100", "--export_width", "100"],
     "cuts frames into 8x8 patches: height and width must be multiples of 8"),
    (OWN_FRAMES + ["--peephole", "true", "--export_height", "128", "--export_width", "128"],
     "peephole weights, which are per pixel, so it only runs on the 96x96 frames"),
    (["--image_size", "32", "--export_height", "64"], "64x32, but Moving MNIST frames (dataset synthetic) are square"),
    (["--image_size", "64", "--export_height", "16", "--export_width", "16"], "at least 32x32"),
    (["--export_height", "-4"], "config key 'export_height': must be >= 0"),
])
def test_an_export_size_the_network_cannot_map_is_refused_naming_the_keys(argv, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(argv)
    assert "export_height" in str(err.value) and fragment in str(err.value)


def test_a_peephole_model_may_be_exported_at_its_own_frame():
    cfg = load_config(OWN_FRAMES + ["--peephole", "true", "--export_height", "96", "--export_width", "96"])
    assert deployment_frame(cfg) == (96, 96)


# ---------------------------------------------------------------- export.py

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("export_size")


def _refused(work, checkpoint, *args):
    out = work / "refused"
    proc = run_script(["export.py", "--ckpt_file", checkpoint, "--file_name", str(out / "model"), *map(str, args)])
    assert not out.exists() or not os.listdir(out)  # nothing written
    return proc


def test_export_refuses_a_frame_the_arch_cannot_tile_in_one_line(work):
    checkpoint = save_tiny_checkpoint(work / "paper.ckpt", tiny_config(work / "run", image_size=32))
    proc = _refused(work, checkpoint, "--export_height", 66, "--export_width", 66)
    assert_one_line_error(proc, "export_height", "66x66, but arch paper cuts frames into 4x4 patches",
                          "multiples of 4")


def test_export_refuses_another_frame_for_a_peephole_model_in_one_line(work):
    checkpoint = save_tiny_checkpoint(work / "peephole.ckpt", tiny_config(work / "run", image_size=32, peephole=True))
    proc = _refused(work, checkpoint, "--export_height", 64, "--export_width", 64)
    assert_one_line_error(proc, "peephole weights", "32x32 frames it was built for", "omit --export_height")


@pytest.mark.slow
def test_a_moving_mnist_model_exports_for_a_larger_square_frame(work):
    from src.export.model_info import read_mindir_info

    checkpoint = save_tiny_checkpoint(work / "mnist.ckpt", tiny_config(work / "run", image_size=32))
    name = work / "wide" / "model"
    proc = run_script(["export.py", "--ckpt_file", checkpoint, "--file_name", str(name), "--export_height", "64",
                       "--export_width", "64", "--check", "true"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "frames: 1x64x64 (C x H x W), the deployment frame" in proc.stdout and "OK" in proc.stdout
    info = read_mindir_info(str(name) + ".mindir")
    assert info.input_shape == (1, 10, 1, 64, 64) and info.config.image_size == 64


def test_export_refuses_changing_the_models_frame_keys_and_names_the_export_keys(work):
    checkpoint = save_tiny_checkpoint(work / "frame.ckpt", tiny_config(work / "run", image_size=32))
    proc = _refused(work, checkpoint, "--image_size", 64)
    assert_one_line_error(proc, "maps frames of 1x32x32", "omit --image_size", "--export_height/--export_width")
