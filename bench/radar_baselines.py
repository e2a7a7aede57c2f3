"""The radar benchmark's reference table, fixed before any recipe is tuned on it.

Generates the data with fixed seeds (the radar storms, ``src.data.radar_storms``, and the rain cells,
``src.data.rain_cells``, for comparison: 600 sequences of 20 frames of 96x96 dBZ each, seed 0), cuts them as
``configs/rain_cpu.yaml`` does (5 observed -> 10 predicted frames, windows every 5 frames, split 80/10/10 by
sequence with split_seed 0) and scores persistence (``copy_last``), the project's optical-flow
``extrapolation`` and pysteps' Lucas-Kanade + semi-Lagrangian extrapolation (``pysteps``) on the validation
split (the one that chooses) and the test split (the one that reports), with the project's metric code
(src/metrics.py: CSI/HSS per lead frame at 20 and 35 dBZ, B-MSE/B-MAE of HKO-7) plus the plain MSE in dBZ^2
per pixel. Prints markdown tables; asserts nothing.

    python bench/radar_baselines.py [--data_dir DIR] [--datasets storms,rain] [--splits val,test]
        [--baselines copy_last,extrapolation,pysteps] [--json FILE]

Without ``--data_dir`` the data go to a temporary directory; with it, files already there are used when their
first and last sequences are the generator's, else refused.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from src.baselines import predict_baseline  # noqa: E402
from src.config import load_config  # noqa: E402
from src.data.pipeline import evaluation_windows, iterate_batches  # noqa: E402
from src.data.radar_storms import RadarStorms  # noqa: E402
from src.data.rain_cells import RainCells, write_dataset  # noqa: E402
from src.metrics import BalancedErrors, SkillScores, balance_of  # noqa: E402

RECIPE = os.path.join(REPO, "configs", "rain_cpu.yaml")
DATASETS = {"storms": (RadarStorms, "storms.npy"), "rain": (RainCells, "rain.npy")}
NUM_SEQUENCES, SEED = 600, 0
BATCH = 8
LABELS = {"copy_last": "persistence (`copy_last`)", "extrapolation": "project `extrapolation` (skimage)",
          "pysteps": "`pysteps` (LK + semi-Lagrangian)"}


def data_file(name, directory):
    """The dataset ``name``'s file under ``directory``: written when missing (timed), else checked."""
    make, file_name = DATASETS[name]
    generator = make(NUM_SEQUENCES, seed=SEED)
    path = os.path.join(directory, file_name)
    if os.path.exists(path):
        stored = np.load(path, mmap_mode="r")
        if stored.shape != generator.shape or any(not np.array_equal(stored[i], generator.sequence(i))
                                                  for i in (0, NUM_SEQUENCES - 1)):
            sys.exit(f"error: {path} is not the {name} data of seed {SEED}; remove it or use another --data_dir")
        print(f"{name}: using {path}", flush=True)
        return path
    start = time.perf_counter()
    summary = write_dataset(directory, generator, file_name=file_name)
    fractions = ", ".join(f"{k[len('fraction_ge_'):]} {100 * v:.1f} %" for k, v in summary.items() if k != "files")
    print(f"{name}: wrote {path} in {time.perf_counter() - start:.1f} s (pixels >= {fractions})", flush=True)
    return path


class Scores:
    """One predictor's scores on one split: skill per lead frame, balanced errors, MSE in dBZ^2, time."""

    def __init__(self, cfg):
        self.skill = SkillScores(cfg.thresholds)
        self.balanced = BalancedErrors(*balance_of(cfg))
        self.squared, self.values, self.seconds, self.windows = None, 0, 0.0, 0

    def update(self, pred, targets, to_units, seconds):
        pred_units, truth = to_units(np.clip(pred, 0.0, 1.0)), to_units(targets)  # (B, T_out, C, H, W) dBZ
        self.skill.update(pred_units, truth)
        self.balanced.update(pred, targets, truth)
        squared = ((pred_units.astype(np.float64) - truth) ** 2).sum(axis=(0, 2, 3, 4))  # (T_out,)
        self.squared = squared if self.squared is None else self.squared + squared
        self.values += truth[:, 0].size  # values per lead frame
        self.seconds += seconds
        self.windows += len(pred)

    def result(self):
        skill = self.skill.result()
        balanced = self.balanced.result()
        return {"csi": {e["threshold"]: e["per_lead_frame"]["csi"] for e in skill["by_threshold"]},
                "hss": {e["threshold"]: e["per_lead_frame"]["hss"] for e in skill["by_threshold"]},
                "mse_dbz2": [float(v) / self.values for v in self.squared],
                "b_mse": balanced["b_mse"], "b_mae": balanced["b_mae"],
                "s_per_window": self.seconds / max(1, self.windows), "windows": self.windows}


def score_split(path, split, baselines):
    """{baseline: Scores.result()} on the ``split`` windows of ``path`` as rain_cpu.yaml cuts them."""
    cfg = load_config(["--data_path", path, "--eval_split", split], config_path=RECIPE)
    source, described = evaluation_windows(cfg)
    print(f"  {split}: {described}", flush=True)
    to_units = source.normalization.denormalize
    scores = {name: Scores(cfg) for name in baselines}
    for _, inputs, targets in iterate_batches(source, BATCH):
        for name in baselines:
            start = time.perf_counter()
            pred = predict_baseline(name, inputs, cfg.output_frames)  # (B, T_out, C, H, W) in [0, 1]
            scores[name].update(pred, targets, to_units, time.perf_counter() - start)
    return {name: s.result() for name, s in scores.items()}


def _mean(values):
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None


def _cell(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def print_tables(title, results):
    """Per lead frame CSI at each threshold, then the means and errors, as markdown."""
    first = next(iter(results.values()))
    leads = len(first["mse_dbz2"])
    print(f"\n### {title}\n")
    for threshold in first["csi"]:
        print(f"CSI >= {threshold:g} dBZ per lead frame:\n")
        print("| predictor | " + " | ".join(str(k) for k in range(1, leads + 1)) + " | mean |")
        print("|---|" + "---:|" * (leads + 1))
        for name, r in results.items():
            curve = r["csi"][threshold]
            print(f"| {LABELS[name]} | " + " | ".join(_cell(v) for v in curve) + f" | {_cell(_mean(curve))} |")
        print()
    thresholds = list(first["csi"])
    head = " | ".join(f"CSI/HSS >= {t:g}" for t in thresholds)
    print(f"| predictor | {head} | MSE (dBZ^2) | B-MSE | B-MAE | s/window |")
    print("|---|" + "---|" * len(thresholds) + "---:|---:|---:|---:|")
    for name, r in results.items():
        cells = " | ".join(f"{_cell(_mean(r['csi'][t]))}/{_cell(_mean(r['hss'][t]))}" for t in thresholds)
        print(f"| {LABELS[name]} | {cells} | {np.mean(r['mse_dbz2']):.1f} | {r['b_mse']:.1f} | {r['b_mae']:.1f} | "
              f"{r['s_per_window']:.3f} |")


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default="", help="where the data are written / read (default: a temporary "
                                                       "directory)")
    parser.add_argument("--datasets", default="storms,rain")
    parser.add_argument("--splits", default="val,test")
    parser.add_argument("--baselines", default="copy_last,extrapolation,pysteps")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args(argv)
    for option, allowed in (("datasets", DATASETS), ("splits", ("val", "test")), ("baselines", LABELS)):
        bad = [v for v in getattr(args, option).split(",") if v not in allowed]
        if bad:
            parser.error(f"--{option}: unknown {', '.join(bad)}; choose from {', '.join(allowed)}")
    return args


def main(argv=None):
    args = parse(argv)
    baselines = args.baselines.split(",")
    if "pysteps" in baselines:
        from src.baselines import BaselineUnavailable, pysteps_methods
        try:
            pysteps_methods()
        except BaselineUnavailable as err:
            sys.exit(f"error: {err}")
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.data_dir or scratch
        os.makedirs(directory, exist_ok=True)
        for name in args.datasets.split(","):
            path = data_file(name, directory)
            for split in args.splits.split(","):
                figures[f"{name}/{split}"] = score_split(path, split, baselines)
    for key, results in figures.items():
        print_tables(key, results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=1, default=float)
        print(f"\nfigures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
