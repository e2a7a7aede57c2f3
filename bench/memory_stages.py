"""Where a MindSpore training process's memory goes, stage by stage, in one process.

Usage (from the repository root):

    python bench/memory_stages.py [--config_path configs/cpu.yaml] [--key value ...]

Defaults: ``configs/cpu.yaml`` with ``--batch_size 4 --dataset synthetic`` (the paper network
128-64-64, 5x5, the row of bench_step.py's table). After each stage the process's resident
memory (VmRSS) and its high-water mark (VmHWM) are printed, in MiB:

1. ``import mindspore``;
2. the runtime: device set and one small op run (MindSpore's own floor);
3. the network and the optimizer built (parameters + Adam moments);
4. the first forward pass in pynative mode, no gradient (activations of one forward);
5. the first training step (in graph mode: compilation + one step's activations and gradients;
   ``--mode pynative``: the same step uncompiled, which separates the compiler's share);
6. 3 more steps (steady state).

It also prints the activation estimate that train.py prints ("estimated activation memory").
The stages are cumulative: the difference between two rows is what that stage added. Asserts
nothing; the measured table is in bench/README.md.
"""
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DEFAULTS = ["--config_path", os.path.join(REPO, "configs", "cpu.yaml"), "--batch_size", "4",
            "--dataset", "synthetic"]


def memory_mib():
    """(VmRSS, VmHWM) of this process, in MiB."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, amount = line.split(":", 1)
                values[key] = int(amount.split()[0]) / 1024.0
    return values["VmRSS"], values["VmHWM"]


def report(stage, start):
    rss, hwm = memory_mib()
    print(f"| {stage} | {rss:,.0f} | {hwm:,.0f} | {time.perf_counter() - start:.1f} |", flush=True)


def main(argv):
    start = time.perf_counter()
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    argv = [t for i in range(0, len(DEFAULTS), 2) if DEFAULTS[i] not in given for t in DEFAULTS[i:i + 2]] + argv
    from src.config import load_config
    from src.models.flops import network_cost

    cfg = load_config(argv)
    cost = network_cost(cfg)
    print(f"config: {cfg.config_path} arch {cfg.arch} hidden {cfg.hidden_channels} kernel {cfg.kernel_size} "
          f"batch {cfg.batch_size}; params {cost['params'] / 1e6:.2f} M; train.py's activation estimate "
          f"{cost['activation_bytes_per_sequence'] * cfg.batch_size / 2**20:,.0f} MiB", flush=True)
    print("| stage | VmRSS MiB | VmHWM MiB | s since start |\n|---|---:|---:|---:|", flush=True)
    report("start (Python + numpy + yaml)", start)

    import mindspore as ms
    import numpy as np

    report("1. import mindspore", start)
    from src.device import init_device

    init_device(cfg)
    ms.ops.add(ms.Tensor(np.ones(4, np.float32)), 1).asnumpy()
    report("2. runtime started (device set, one op)", start)

    from src.models.network import build_network
    from src.models.mixed_precision import training_forward
    from src.training.step import build_optimizer, build_train_step

    ms.set_seed(cfg.seed)
    net = build_network(cfg)
    forward = training_forward(net, "O0")
    optimizer = build_optimizer(cfg, net)
    step = build_train_step(cfg, forward, optimizer)
    report("3. network + optimizer built", start)

    rng = np.random.default_rng(0)
    size = cfg.image_size
    inputs = ms.Tensor(rng.random((cfg.batch_size, cfg.input_frames, 1, size, size), dtype=np.float32))
    targets = ms.Tensor(rng.random((cfg.batch_size, cfg.output_frames, 1, size, size), dtype=np.float32))
    net.set_train(False)
    net(inputs).asnumpy()
    report("4. one pynative forward (no gradient)", start)

    net.set_train(True)
    lr = ms.Tensor(cfg.lr, ms.float32)
    step(inputs, targets, lr)[0].asnumpy()
    report(f"5. first training step ({'compile + step' if cfg.mode == 'graph' else 'pynative, not compiled'})", start)
    for _ in range(3):
        step(inputs, targets, lr)[0].asnumpy()
    report("6. after 3 more steps", start)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
