"""Train ConvLSTM on Moving MNIST.

    python train.py --config_path configs/cpu_small.yaml [--key value ...]

Every config key can be overridden on the command line (see `python -m src.config`).
``--data_url`` / ``--train_url`` (ModelArts, OpenI) name data_path / output_dir; remote
values are copied in and out with moxing (src/cloud.py).

Where the steps of a run live:
  config    src/config.py; on resume the checkpoint's config of record: src/training/resume.py
  data      src/data/pipeline.py (TrainingData: training batches, validation); the train/val/test split
            of own sequences: src/data/sequences.py (split_sequences, or train/val/test files), recorded
            in each checkpoint by src/data/split_record.py
  Trainer   src/training/trainer.py: the network (src/models/), the optimizer and the training step
            (src/training/step.py, its loss src/training/losses.py), checkpoints in OUTPUT_DIR/ckpt
            (Trainer.save -> src/checkpoint.py)
  fit       Trainer.fit: epochs, validation (src/evaluation.py), best.ckpt, early stopping
"""
# MindSpore loads with src.training.trainer, imported in main once the config and the data are read:
# --help, config and data errors answer before it loads.
from src.cli import run_cli
from src.cloud import local_argv, local_copies
from src.config import keys_help, load_config
from src.data.pipeline import TrainingData
from src.training.resume import training_config


def main(argv):
    cfg = load_config(argv)
    with local_copies(cfg) as local_cfg:  # first, so that a resumed run finds its checkpoint in the copy
        cfg = training_config(local_argv(argv, cfg, local_cfg))  # resume: the checkpoint's config of record
        data = TrainingData(cfg)  # training and validation sequences; own data completes cfg (data.cfg)
        from src.training.trainer import Trainer

        trainer = Trainer(cfg, data=data)  # device, network, optimizer, loss, run directory, resumed state
        return trainer.fit()


if __name__ == "__main__":
    run_cli(main, doc=__doc__, config_keys=keys_help)
