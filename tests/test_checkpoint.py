"""What a checkpoint tells about itself (src/checkpoint.py)."""
import pytest

META = dict(epoch=6, step_in_epoch=0, best_epoch=5, best_score=2795.65, best_metric="b-mse+b-mae")


@pytest.mark.parametrize("meta, line", [
    (dict(META, best_epoch=6),
     "checkpoint saved after epoch 6: the run's best validation b-mse+b-mae so far, 2795.6500"),
    (META, "checkpoint saved after epoch 6; the run's best validation b-mse+b-mae so far: 2795.6500 at epoch 5 "
           "(best.ckpt)"),
    (dict(META, step_in_epoch=40, best_metric="csi@35", best_score=0.25),
     "checkpoint saved in epoch 7 at step 40; the run's best validation csi@35 so far: 0.2500 at epoch 5 (best.ckpt)"),
    (dict(META, best_metric="train loss", best_epoch=6, best_score=0.125),
     "checkpoint saved after epoch 6: the run's best train loss so far, 0.1250"),
    ({k: v for k, v in META.items() if k != "best_metric"},  # written before best_metric existed
     "checkpoint saved after epoch 6; the run's best validation score so far: 2795.6500 at epoch 5 (best.ckpt)"),
    (dict(META, best_score=None), ""),  # no epoch finished
    ({}, ""),  # not saved by training
])
def test_checkpoint_record_names_the_score_that_chose_best_ckpt(tmp_path, meta, line):
    from src.checkpoint import checkpoint_record, save_checkpoint
    from src.models.network import build_network
    from tests.exported_models import tiny_config

    cfg = tiny_config(tmp_path / "run")
    path = save_checkpoint(str(tmp_path / "x.ckpt"), build_network(cfg), cfg, meta=meta)
    assert checkpoint_record(path) == line


def test_checkpoint_record_of_an_unreadable_file_is_empty(tmp_path):
    from src.checkpoint import checkpoint_record

    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    assert checkpoint_record(str(tmp_path / "bad.ckpt")) == ""


def _own(**changes):
    from src.config import load_config

    values = dict(dataset="sequences", channels=1, frame_height=32, frame_width=32)
    values.update(changes)
    return load_config([f"--{k}={v}" for k, v in values.items()])


def test_a_checkpoint_runs_on_a_deployment_frame_only_when_asked_and_without_peephole_weights():
    from src.checkpoint import check_same_architecture
    from src.errors import CheckpointError

    wide = _own(frame_height=64, frame_width=96)
    check_same_architecture(_own(), wide, "x.ckpt", any_frame=True)  # convolutional: any tileable frame
    with pytest.raises(CheckpointError, match="trained on frames of 1x32x32 .* have 1x64x96"):
        check_same_architecture(_own(), wide, "x.ckpt")  # eval.py: the checkpoint's frame only
    with pytest.raises(CheckpointError, match="1x32x32"):
        check_same_architecture(_own(peephole=True), _own(peephole=True, frame_height=64), "x.ckpt", any_frame=True)
    with pytest.raises(CheckpointError, match="1x32x32 .* 2x32x32"):  # channels are the network's input
        check_same_architecture(_own(), _own(channels=2), "x.ckpt", any_frame=True)
