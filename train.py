"""Train ConvLSTM on Moving MNIST.

    python train.py --config_path configs/cpu_small.yaml [--key value ...]

Every config key can be overridden on the command line (see `python -m src.config`).
"""
from src.config import load_config
from src.errors import run_cli


def main(argv):
    cfg = load_config(argv)
    from src.training.trainer import train

    return train(cfg)


if __name__ == "__main__":
    run_cli(main)
