"""Print the layer table and the totals (parameters, MACs, FLOPs, activation memory) of a network.

    python -m src.models.flops --config_path configs/cpu.yaml [--key value ...]
    python -m src.models.flops --ckpt_file RUN/ckpt/best.ckpt        # the network a checkpoint holds

With ``--ckpt_file`` the network is the one the checkpoint's stored config describes (arch,
hidden_channels, frame counts, and for own sequences the channels and frame shape train.py read
from the data), resolved with the command line as eval.py does (``src.checkpoint.config_of_record``):
no other flag is needed, and one that contradicts the checkpoint's network is refused in one line.
"""
from src.checkpoint import config_of_record
from src.cli import parse_overrides, run_cli
from src.config import keys_help
from src.models.flops import format_cost_table


def main(argv):
    cfg = config_of_record(argv)  # with --ckpt_file: the checkpoint's config, contradicting flags refused
    ckpt = parse_overrides(list(argv)).get("ckpt_file")
    if ckpt:
        print(f"config: stored in checkpoint {ckpt}")
    print(format_cost_table(cfg))
    return 0


if __name__ == "__main__":
    run_cli(main, doc=__doc__, config_keys=keys_help)
