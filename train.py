"""Train ConvLSTM on Moving MNIST.

    python train.py --config_path configs/cpu_small.yaml [--key value ...]

Every config key can be overridden on the command line (see `python -m src.config`).
``--data_url`` / ``--train_url`` (ModelArts, OpenI) name data_path / output_dir; remote
values are copied in and out with moxing (src/cloud.py).
"""
from src.cli import run_cli
from src.config import keys_help


def main(argv):
    from src.cloud import local_argv, local_copies
    from src.config import load_config
    from src.training.resume import training_config
    from src.training.trainer import train

    cfg = load_config(argv)
    with local_copies(cfg) as local_cfg:  # first, so that a resumed run finds its checkpoint in the copy
        return train(training_config(local_argv(argv, cfg, local_cfg)))


if __name__ == "__main__":
    run_cli(main, doc=__doc__, config_keys=keys_help)
