"""Every config key is declared once in ``SCHEMA``, with its role (``ROLES``) from which every key list is
derived (docs/configuration.md's tables: ``python -m src.config``).
A run reads a yaml file and ``--key value`` overrides; a bad key or value is a ConfigError naming the key."""
import difflib
import math
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import yaml

from src.cli import BOOL_WORDS, overrides_argv, parse_overrides, run_cli
from src.errors import ConfigError, UserError
from src.io import write_text_atomic

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO_ROOT, "configs", "cpu_small.yaml")
FORECASTER_INPUTS = ("none", "prediction")  # values of forecaster_input (paper arch)
ARCHS = ("zoo", "paper", "stacked")
PATCH_ARCHS = ("paper", "stacked")  # archs that cut frames into patch_size x patch_size patches
OUTPUT_ACTIVATIONS = ("sigmoid", "linear")
LOSS_FRAMES = ("output", "all")
SAMPLINGS = ("none", "scheduled", "reverse")
LR_SCHEDULES = ("constant", "cosine", "step", "plateau", "onecycle")
DATASETS = ("synthetic", "mnist", "sequences")
GENERATED_DATASETS = ("synthetic", "mnist")  # Moving MNIST: 1 channel, image_size x image_size frames
LAYOUTS = ("NTHW", "NTCHW", "NTHWC", "TNHW")  # axis orders of own sequence files (src/data/sequences.py)
SCALES = ("auto", "minmax")  # how own sequence values are mapped to [0, 1]
DATA_DTYPES = ("uint8", "uint16", "float16", "float32")
MAX_CHANNELS = 16  # a longer channel axis is taken as a wrong layout
HKO7_CLASS_BOUNDARIES = 5  # HKO-7 balances 6 rain-rate classes (src.metrics.HKO7_RAIN_RATES)
BASELINES = ("zeros", "copy_last", "extrapolation", "pysteps")  # reference predictors (src/baselines.py); eval.py --baseline
SECTIONS = ("general", "data", "model", "train", "eval/export")
BEST_METRICS = ("auto", "mse", "mae", "ssim", "psnr", "bmse_bmae")  # best_metric: one of these or csi@THRESHOLD
RULES = {  # the checks that are not a range: name -> (test, message)
    "positive_list": (lambda v: len(v) >= 1 and all(c > 0 for c in v), "must be a non-empty list of positive ints"),
    "positive_odd": (lambda v: v >= 1 and v % 2 == 1, "must be a positive odd integer"),
    "distinct": (lambda v: len(set(v)) == len(v), "must not repeat a value"),
    "distinct_positive": (lambda v: all(c > 0 for c in v) and len(set(v)) == len(v),
                          "must be distinct positive integers (empty: off)"),
    "channel_indices": (lambda v: all(c >= 0 for c in v) and list(v) == sorted(set(v)),
                        "must be distinct channel indices >= 0 in increasing order (empty: all channels)"),
}


ALWAYS, UNLESS_GIVEN, NEVER = "always", "unless given", "never"  # values of Role.from_model


@dataclass(frozen=True)
class Role:
    """What a config key decides, and the two rules that follow from it: where its value comes from when a
    command starts from a trained model (``from_model``, applied by ``resolve_config``: ALWAYS the model's,
    a different value refused; the model's UNLESS_GIVEN on the command line; NEVER the model's, but defaults
    < yaml < command line) and whether a resumed run may change it without --allow_config_change
    (``may_change_on_resume``, applied by src/training/resume.py). Every key list of the project is derived
    from them."""

    name: str
    decides: str
    from_model: str
    may_change_on_resume: bool


ROLES = {role.name: role for role in (
    Role("model", "the network and its input/output contract (layers, frames in and out, output activation); a "
         "checkpoint of another network is refused even with allow_config_change", ALWAYS, False),
    Role("frame", "the frame shape, compared as one C x H x W (Moving MNIST: 1 x image_size x image_size); 0 = "
         "read from the data, train.py stores what it read", ALWAYS, False),
    Role("normalisation", "how the data's values are mapped to [0, 1] and which mark pixels without data; "
         "data_dtype empty = read from the data",
         ALWAYS, False),
    Role("procedure", "what training computes: data, split, initialisation, loss, optimizer, schedule, sampling, "
         "precision", UNLESS_GIVEN, False),
    Role("resumable", "how long a run trains, where its data lies, what it logs and keeps", UNLESS_GIVEN, True),
    Role("run", "how this command runs: device, mode, ranks, directories, workers, output files", NEVER, True),
    Role("eval", "evaluation and export only, unused by training", UNLESS_GIVEN, True),
)}


@dataclass(frozen=True)
class Key:
    """One configuration key. Its choices, bounds (``min``/``max`` inclusive, ``above``/``below``
    exclusive, ``note`` added to their message) and ``rule`` (from ``RULES``) generate its check;
    its ``role`` (from ``ROLES``) says where its value comes from; ``from_data``: its default (0 or "")
    means "read from the data" (train.py stores the value it read)."""

    name: str
    type: str  # "int" | "float" | "str" | "bool" | "int_list" | "float_list" | "nodata_list"; a float with default
    # None is optional
    default: Any
    help: str
    section: str
    role: str = ""
    from_data: bool = False
    choices: Optional[Sequence[Any]] = None
    min: Optional[float] = None
    max: Optional[float] = None
    above: Optional[float] = None
    below: Optional[float] = None
    note: str = ""
    rule: str = ""

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"config key {self.name}: role {self.role!r} is not one of {', '.join(ROLES)}")

    def violation(self, value):
        """What is wrong with ``value`` (``"must be >= 1, got 0"``), or None."""
        if self.choices is not None:
            return None if value in self.choices else f"{value!r} is not one of {', '.join(map(str, self.choices))}"
        if self.rule:
            ok, text = RULES[self.rule][0](value), RULES[self.rule][1]
        elif self.above is not None and self.below is not None:
            ok, text = self.above < value < self.below, f"must be in ({self.above:g}, {self.below:g})"
        elif self.min is not None and self.max is not None:
            ok, text = self.min <= value <= self.max, f"must be in [{self.min:g}, {self.max:g}]"
        elif self.min is not None:
            ok, text = value >= self.min, f"must be >= {self.min:g}"
        elif self.above is not None:
            ok, text = value > self.above, f"must be > {self.above:g}"
        else:
            return None
        return None if ok else f"{text}{f' ({self.note})' if self.note else ''}, got {value!r}"


def _keys():
    g, d, m, t, e = SECTIONS
    return [
        # general
        Key("device_target", "str", "CPU", "device to run on", g, role="run", choices=("Ascend", "GPU", "CPU")),
        Key("device_id", "int", 0, "device index on this host (standalone runs)", g, role="run", min=0),
        Key("mode", "str", "graph", "graph: compile the step (mindspore.jit/GRAPH_MODE); pynative: eager, for "
            "debugging", g, role="run", choices=("graph", "pynative")),
        Key("seed", "int", 1, "seed of weights init and of the training-data generator", g, role="procedure", min=0),
        Key("output_dir", "str", "./output", "run directory: config.yaml, logs, ckpt/, pictures", g, role="run"),
        Key("distribute", "bool", False, "data-parallel training over all workers of the launched cluster", g,
            role="run"),
        Key("debug", "bool", False, "print Python tracebacks for user errors", g, role="run"),
        # data
        Key("dataset", "str", "synthetic", "synthetic = Moving MNIST of embedded procedural digits (no download); "
            "mnist = Moving MNIST from the files under data_path; sequences = your own sequence arrays (data_path, "
            "data_layout, data_scale ...)", d, role="procedure", choices=DATASETS),
        Key("data_path", "str", "./data", "mnist: directory with train-images-idx3-ubyte.gz and mnist_test_seq.npy "
            "(download.sh layout; eval also accepts the .npy itself); sequences: one .npy/.npz file (split by "
            "sequence) or a directory with train, val and test files", d, role="resumable"),
        Key("data_layout", "str", "NTCHW", "sequences: axis order of the arrays (N sequences, T frames, C channels, "
            "H x W pixels; TNHW = time first, as mnist_test_seq.npy)", d, role="procedure", choices=LAYOUTS),
        Key("npz_key", "str", "", "sequences: the array of an .npz to use (empty: its only array)", d,
            role="procedure"),
        Key("data_scale", "str", "auto", "sequences: auto = integers / dtype maximum, floats must lie in [0, 1]; "
            "minmax = (x - data_min) / (data_max - data_min), clipped to [0, 1]", d,
            role="normalisation", choices=SCALES),
        Key("data_min", "float", None, "sequences, data_scale minmax: the value mapped to 0, in the data's units "
            "(e.g. -10 dBZ)", d, role="normalisation"),
        Key("data_max", "float", None, "sequences, data_scale minmax: the value mapped to 1, in the data's units "
            "(e.g. 60 dBZ)", d, role="normalisation"),
        Key("data_dtype", "str", "", "sequences: dtype the normalisation was made for (empty: read from the data; "
            "train.py stores it)", d, role="normalisation", from_data=True, choices=("",) + DATA_DTYPES),
        Key("nodata", "nodata_list", [], "sequences: values that mark pixels without a measurement, in the data's "
            "units: nan and/or numbers (e.g. [nan,-9999]); such input pixels are filled with the value normalised to 0 "
            "(data_min; 0 for auto), such target pixels are left out of the loss, the metrics and the skill scores "
            "(empty: NaN in a float file is refused)", d, role="normalisation"),
        Key("window_stride", "int", 0, "sequences: frames between the starts of consecutive windows of input_frames "
            "+ output_frames frames (0 = the window length: no overlap)", d, role="procedure", min=0),
        Key("crop_size", "int", 0, "sequences: train on random crop_size x crop_size crops of each window (0 = whole "
            "frames), for domains too large to train on whole; validation, evaluation, prediction and export use "
            "whole frames (the networks are convolutional)", d, role="procedure", min=0),
        Key("val_fraction", "float", 0.1, "sequences, one file: fraction of its sequences for validation", d,
            role="procedure", above=0, below=1),
        Key("test_fraction", "float", 0.1, "sequences, one file: fraction of its sequences held out for eval.py", d,
            role="procedure", above=0, below=1),
        Key("split_seed", "int", 0, "sequences, one file: seed of the assignment of sequences to train/val/test", d,
            role="procedure", min=0),
        Key("channels", "int", 0, "channels C of a frame (0 = from the data; Moving MNIST: 1); train.py stores the "
            "value it read", d, role="frame", from_data=True, min=0, max=MAX_CHANNELS),
        Key("frame_height", "int", 0, "frame height H in pixels (0 = from the data; Moving MNIST: image_size); "
            "train.py stores the value it read", d, role="frame", from_data=True, min=0),
        Key("frame_width", "int", 0, "frame width W in pixels (0 = from the data; Moving MNIST: image_size); "
            "train.py stores the value it read", d, role="frame", from_data=True, min=0),
        Key("num_digits_train", "int", 3, "digits per generated training sequence", d, role="procedure", min=1),
        Key("num_digits_val", "int", 2, "digits per generated validation/eval sequence (the test set has 2)", d,
            role="procedure", min=1),
        Key("input_frames", "int", 10, "observed frames given to the network", d, role="model", min=1),
        Key("output_frames", "int", 10, "frames to predict", d, role="model", min=1),
        Key("image_size", "int", 64, "Moving MNIST (synthetic, mnist): frame height and width in pixels (>= 32: the "
            "28-pixel digits need room to move; each arch adds its own tiling rule)", d, role="frame", min=32),
        Key("num_workers", "int", 2, "parallel workers generating training sequences", d, role="run", min=1),
        Key("worker_type", "str", "thread", "what the num_workers are: thread (cheap to start) or process (no "
            "interpreter lock; bench/data_throughput.py measures both)", d, role="run", choices=("thread", "process")),
        Key("val_sequences", "int", 256, "size of the fixed generated validation set", d, role="procedure", min=0,
            note="0 disables validation"),
        Key("val_seed", "int", 20150613, "seed of the fixed validation set (independent of seed)", d,
            role="procedure", min=0),
        Key("test_seed", "int", 20151107, "seed of generated evaluation sets (eval.py --dataset synthetic); disjoint "
            "from val_seed by construction", d, role="eval", min=0),
        # model
        Key("arch", "str", "paper", "network: zoo (3-level conv/ConvLSTM, ~8.1M params), paper (Shi et al. 2015, "
            "patches, encoder and forecaster stacks) or stacked (OpenSTL's next-frame ConvLSTM: one stack on patches "
            "for every step, 1x1 output conv; reads its own previous prediction after the observed frames)", m,
            role="model", choices=ARCHS),
        Key("hidden_channels", "int_list", [128, 64, 64], "paper/stacked arch: ConvLSTM layer widths, bottom to top", m,
            role="model", rule='positive_list'),
        Key("kernel_size", "int", 5, "paper/stacked arch: ConvLSTM kernel size (odd)", m,
            role="model", rule='positive_odd'),
        Key("patch_size", "int", 4, "paper/stacked arch: space-to-depth patch size", m,
            role="model", choices=(1, 2, 4, 8)),
        Key("forecaster_input", "str", "none", "paper arch: what forecaster layer 1 reads at each step: none (the "
            "paper) or prediction (the previous frame: last observed, then its own predictions)", m, role="model",
            choices=FORECASTER_INPUTS),
        Key("peephole", "bool", False, "ConvLSTM peephole (Hadamard) connections on the cell state", m, role="model"),
        Key("group_norm", "bool", False, "GroupNorm on the gate pre-activations (the zoo arch always uses it)", m,
            role="model"),
        Key("forget_bias", "float", 1.0, "initial forget-gate bias", m, role="procedure"),
        Key("output_activation", "str", "sigmoid", "what maps the output layer to frames: sigmoid (the losses "
            "work on its logits) or linear (paper/stacked arch; OpenSTL's: the loss on the raw output, predictions "
            "clipped to [0, 1] when read out; needs loss mse or balanced)", m, role="model", choices=OUTPUT_ACTIVATIONS),
        Key("residual", "bool", False, "paper/stacked arch, output_activation linear: each predicted frame is the "
            "latest frame the network has read plus the output layer's change (paper: the last observed frame; "
            "stacked: the frame of its step, true or predicted), so an untrained network starts from persistence; "
            "set output_bias 0", m, role="model"),
        Key("output_bias", "float", -3.0, "initial bias (logit) of the output layer: Moving MNIST frames are ~90% "
            "black; starting dark (sigmoid(-3)~0.05) shortens the grey-haze phase that SSIM punishes hard", m,
            role="procedure"),
        Key("target_channels", "int_list", [], "sequences: the channels the network predicts and is scored on, as "
            "indices into the data's channels in increasing order, e.g. [0] for radar in channel 0 with satellite "
            "bands in channels 1 and 2 as extra inputs; the loss, the metrics, the skill scores, the baselines, the "
            "pictures, predictions.npy and the exported output hold these channels only (empty: all channels; arch "
            "stacked, forecaster_input prediction and lead_frames past output_frames need all)", m, role="model",
            rule="channel_indices"),
        # train
        Key("epochs", "int", 10, "training epochs", t, role="resumable", min=1),
        Key("steps_per_epoch", "int", 100, "optimizer steps per epoch (sequences are generated: an epoch is "
            "steps_per_epoch x batch_size x workers sequences)", t, role="procedure", min=1),
        Key("batch_size", "int", 16, "sequences per step and per device", t, role="procedure", min=1),
        Key("loss", "str", "mse", "training loss: mse, bce (binary cross-entropy, the paper's loss), or balanced "
            "(HKO-7's B-MSE + B-MAE: errors weighted by the truth's intensity class, loss_thresholds/loss_weights)",
            t, role="procedure", choices=("mse", "bce", "balanced")),
        Key("loss_frames", "str", "output", "frames the loss is taken on: output = the output_frames predicted "
            "frames; all = every next frame, the observed steps predicting their next frame too (OpenSTL; arch "
            "paper or stacked)", t, role="procedure", choices=LOSS_FRAMES),
        Key("sampling", "str", "none", "stacked arch, what the network reads after frame 1 while training: none = "
            "the observed frames, then its own predictions (as at test time); scheduled = the true next frame with a "
            "probability falling linearly from 1 to 0 at sampling_stop of training (Bengio et al. 2015, as OpenSTL's "
            "ConvLSTM); reverse = PredRNN-V2's reverse scheduled sampling (Wang et al. 2022) on observed and predicted "
            "frames", t, role="procedure", choices=SAMPLINGS),
        Key("sampling_stop", "float", 0.4, "sampling scheduled: fraction of all training steps after which only "
            "predictions are fed (OpenSTL: 50,000 of 125,000 steps)", t, role="procedure", above=0, max=1),
        Key("reverse_sampling_start", "float", 0.2, "sampling reverse: fraction of training where both "
            "probabilities start moving from 0.5 (PredRNN-V2: 25,000 of 125,000 steps)", t,
            role="procedure", min=0, below=1),
        Key("reverse_sampling_stop", "float", 0.4, "sampling reverse: fraction of training where observed frames "
            "are always true and predicted ones never (PredRNN-V2: 50,000 of 125,000 steps)", t,
            role="procedure", above=0, max=1),
        Key("reverse_sampling_alpha", "float", 0.04, "sampling reverse: time constant of the observed frames' "
            "exponential rise, as a fraction of training (PredRNN-V2: 5,000 of 125,000 steps)", t,
            role="procedure", above=0),
        Key("ssim_weight", "float", 0.0, "adds ssim_weight x (1 - SSIM) to the loss (SSIM as the reported metric, "
            "differentiable); counters the blur/haze of pixel losses that SSIM punishes", t, role="procedure", min=0),
        Key("loss_thresholds", "float_list", [], "B-MSE/B-MAE (eval.py with thresholds): intensity class boundaries "
            "in the data's units, ascending (empty: HKO-7's 0.5/2/5/10/30 mm/h as dBZ, for dBZ data mapped from "
            "[-10, 60])", t, role="procedure"),
        Key("loss_weights", "float_list", [], "weights of the loss_thresholds classes, lightest first, one more than "
            "loss_thresholds (empty: HKO-7's 1, 1, 2, 5, 10, 30)", t, role="procedure"),
        Key("optimizer", "str", "adam", "adam, rmsprop (the paper's optimizer, decay 0.9), or sgd (plain gradient "
            "descent: the update is proportional to the gradient)", t,
            role="procedure", choices=("adam", "rmsprop", "sgd")),
        Key("lr", "float", 1e-3, "peak learning rate", t, role="procedure", above=0),
        Key("lr_schedule", "str", "cosine", "constant | cosine (to min_lr over all steps) | step (x lr_gamma every "
            "lr_step_epochs) | plateau (x lr_gamma after lr_patience epochs without validation gain) | onecycle "
            "(PyTorch's OneCycleLR with its defaults, as OpenSTL: from lr/25 up to lr over onecycle_pct_start of the "
            "steps, cosine down to lr/25/1e4; min_lr and warmup_epochs unused)", t,
            role="procedure", choices=LR_SCHEDULES),
        Key("onecycle_pct_start", "float", 0.3, "onecycle: fraction of the steps spent rising to lr", t,
            role="procedure", above=0, below=1),
        Key("min_lr", "float", 1e-5, "final learning rate of the cosine schedule; floor of step/plateau (onecycle "
            "ends at lr/25/1e4 instead)", t, role="procedure", min=0),
        Key("warmup_epochs", "int", 0, "linear warm-up epochs before the schedule", t, role="procedure", min=0),
        Key("lr_step_epochs", "int", 10, "step schedule: epochs between decays", t, role="procedure", min=1),
        Key("lr_gamma", "float", 0.5, "step/plateau schedule: decay factor", t, role="procedure", above=0, below=1),
        Key("lr_patience", "int", 2, "plateau schedule: epochs without improvement before decaying", t,
            role="procedure", min=1),
        Key("weight_decay", "float", 0.0, "L2 weight decay", t, role="procedure", min=0),
        Key("grad_clip", "float", 1.0, "clip gradients to this global norm (0 = off)", t, role="procedure", min=0),
        Key("save_every", "int", 1, "save convlstm-<epoch>_<step>.ckpt every N epochs (last/best always)", t,
            role="resumable", min=1),
        Key("keep_checkpoints", "int", 5, "numbered checkpoints kept (oldest deleted; 0 = keep all)", t,
            role="resumable", min=0),
        Key("early_stop_patience", "int", 0, "stop after N epochs without validation improvement (0 = off)", t,
            role="procedure", min=0),
        Key("best_metric", "str", "auto", "validation score that chooses best.ckpt and drives early_stop_patience "
            "and the plateau schedule: auto (the loss's own: B-MSE + B-MAE for loss balanced, MSE for mse and bce; "
            "ssim_weight does not change it), mse, mae, ssim and psnr (these two: higher is better), bmse_bmae "
            "(HKO-7's B-MSE + B-MAE, classes of loss_thresholds/loss_weights), or csi@T (CSI at threshold T in the "
            "data's units, e.g. csi@35; higher is better)", t, role="procedure"),
        Key("log_every", "int", 10, "log a loss line every N steps", t, role="resumable", min=1),
        Key("amp_level", "str", "O0", "mixed precision (Ascend/GPU): O0 off, O1/O2/O3 as mindspore.amp", t,
            role="procedure", choices=("O0", "O1", "O2", "O3")),
        Key("amp_on_cpu", "bool", False, "apply amp_level and loss_scale on the CPU backend too (float16 kernels on "
            "CPU: slow, for running the device code path without a device); false: CPU trains float32", t,
            role="procedure"),
        Key("loss_scale", "str", "none", "loss scaling for mixed precision: none | fixed | dynamic", t,
            role="procedure", choices=("none", "fixed", "dynamic")),
        Key("loss_scale_value", "float", 1024.0, "initial/fixed loss scale", t, role="procedure", above=0),
        Key("resume", "str", "", "continue a run: path to a checkpoint, or auto (the run's ckpt/last.ckpt)", t,
            role="run"),
        Key("allow_config_change", "bool", False, "resume: continue even though keys of role procedure or "
            "normalisation differ from the checkpoint's config (the changes are printed and recorded in the run "
            "directory); resumable, run and eval keys may always change, model and frame keys never", t, role="run"),
        Key("overwrite", "bool", False, "allow training into an output_dir that already holds a run", t, role="run"),
        # eval/export
        Key("ckpt_file", "str", "", "checkpoint to evaluate/export", e, role="eval"),
        Key("num_sequences", "int", 0, "evaluate only the first K test sequences (0 = all)", e, role="eval", min=0),
        Key("lead_frames", "int", 0, "eval/predict: frames to forecast (0 = output_frames); more than output_frames "
            "rolls the model forward on its own predictions, each next chunk predicted from the last input_frames "
            "observed + predicted frames (docs/own_data.md, 'Forecasting past the trained horizon')", e, role="eval",
            min=0),
        Key("eval_split", "str", "test", "eval, dataset sequences: test = the test split of data_path (a file is "
            "split as for training; a directory: its test file); val = the validation split (or file), to choose "
            "settings on without touching test; all = every window of the file data_path", e, role="eval",
            choices=("test", "val", "all")),
        Key("eval_batch_size", "int", 8, "sequences per forward pass in evaluation/prediction", e, role="run", min=1),
        Key("save_vis", "int", 0, "write PNG strips and GIFs for the first N sequences", e, role="eval", min=0),
        Key("baseline", "str", "none", "evaluate a reference predictor instead of a checkpoint: none | zeros | "
            "copy_last | extrapolation (the last frame advected along its optical flow) | pysteps (pysteps' "
            "Lucas-Kanade motion and semi-Lagrangian extrapolation; requirements-pysteps.txt)", e, role="eval",
            choices=("none",) + BASELINES),
        Key("thresholds", "float_list", [], "eval: skill-score (POD/FAR/CSI/HSS, FSS) thresholds in the data's units "
            "(sequences: the file's units, e.g. [20,35] dBZ; synthetic/mnist: pixel values in (0, 1])", e, role="eval",
            rule='distinct'),
        Key("fss_scales", "int_list", [1, 5, 15], "eval, with thresholds: neighbourhood sizes n in pixels of the "
            "Fractions Skill Score (Roberts and Lean 2008; event fractions in n x n boxes; 1 = pixel by pixel; empty: "
            "no FSS)", e, role="eval", rule="distinct_positive"),
        Key("file_name", "str", "convlstm", "export: output file name without extension", e, role="run"),
        Key("file_format", "str", "MINDIR", "export format", e, role="run", choices=("MINDIR", "AIR", "ONNX")),
        Key("export_height", "int", 0, "export: frame height H of the exported model, the deployment frame (0 = the "
            "model's frame_height; Moving MNIST: image_size); the networks are convolutional, so a model trained on "
            "crops or smaller frames deploys on larger ones; the arch's tiling rule applies, a network with peephole "
            "weights is refused", e, role="run", min=0),
        Key("export_width", "int", 0, "export: frame width W of the exported model (0 = the model's frame_width; "
            "Moving MNIST: image_size); see export_height", e, role="run", min=0),
    ]


SCHEMA = {k.name: k for k in _keys()}
# config_path is no config key (it names the file the keys come from), so it has no role
CLI_ONLY = ("config_path",)  # taken from the command line only (never from a yaml file)
COMMAND_LINE_KEYS = frozenset(SCHEMA) | frozenset(CLI_ONLY)  # every --key a config takes


def roles_where(**rules):
    """The names of the roles with these rule values, e.g. ``roles_where(may_change_on_resume=True)``."""
    return tuple(role.name for role in ROLES.values() if all(getattr(role, k) == v for k, v in rules.items()))


def keys_with_role(*roles):
    """The keys of ``roles``, role by role, each role's keys in schema order."""
    return tuple(name for role in roles for name, key in SCHEMA.items() if key.role == role)


# A command starting from a trained model (resolve_config) takes MODEL_KEYS from the model (contradicting
# values refused), RUN_ONLY_KEYS never from it (defaults < yaml < command line; 8 training ranks evaluate
# on 1), and every other key from it unless the command line gives it.
MODEL_KEYS = keys_with_role(*roles_where(from_model=ALWAYS))
FRAME_KEYS = keys_with_role("frame")  # compared as one (C, H, W)
RUN_ONLY_KEYS = keys_with_role(*roles_where(from_model=NEVER))
DERIVED_FROM_DATA = {name: key.default for name, key in SCHEMA.items() if key.from_data}  # name -> "unset"

class Config:
    """Validated, read-only configuration; keys are attributes (``cfg.batch_size``)."""

    def __init__(self, values, config_path=""):
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "config_path", config_path)

    def __getattr__(self, name):
        if name not in self._values:
            raise AttributeError(name)
        return self._values[name]

    def __setattr__(self, name, value):
        raise AttributeError("Config is read-only; use replace(key=value)")

    def replace(self, **changes):
        """A copy with some keys changed (validated like a file)."""
        values = dict(self._values, **{name: _convert(name, raw, "replace()") for name, raw in changes.items()})
        _check_values(values)
        return Config(values, self.config_path)

    def to_dict(self):
        return dict(self._values)

    def to_yaml(self):
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path):
        write_text_atomic(path, self.to_yaml())

    def describe(self):
        """The effective config, one line per section."""
        lines = [f"config: {self.config_path or '(defaults)'}"]
        for section in SECTIONS:
            items = [f"{k.name}={self._values[k.name]}" for k in SCHEMA.values() if k.section == section]
            lines.append(f"  [{section}] " + " ".join(items))
        return "\n".join(lines)


def _suggest(name):
    close = difflib.get_close_matches(name, list(SCHEMA) + list(CLI_ONLY), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else " (see `python -m src.config` for the list)"


def _convert(name, raw, where):
    """A yaml or command-line value converted to the key's declared type."""
    if name not in SCHEMA:
        raise ConfigError(f"unknown config key '{name}' in {where}{_suggest(name)}")
    key = SCHEMA[name]
    bad = ConfigError(f"config key '{name}' in {where}: expected {key.type}, got {raw!r}")
    if key.type == "bool":
        value = BOOL_WORDS.get(raw.lower()) if isinstance(raw, str) else raw
        if not isinstance(value, bool):
            raise bad
        return value
    if key.type == "nodata_list":
        return nodata_list(raw, bad, name, where)
    if key.type in ("int_list", "float_list"):
        return _number_list(raw, bad, name, where, integers=key.type == "int_list")
    if key.type == "float" and key.default is None and _means_unset(raw):
        return None  # an optional number left unset
    numbers = (int,) if key.type == "int" else (int, float)
    if isinstance(raw, bool) or not isinstance(raw, (str,) + numbers):
        raise bad
    if key.type == "str":
        return str(raw)
    try:
        value = int(raw) if key.type == "int" else float(raw)
    except ValueError:
        raise bad from None
    if not math.isfinite(value):
        raise ConfigError(f"config key '{name}' in {where}: must be finite, got {raw!r}")
    return value


def checked_value(name, raw, where):
    """One key's value converted and checked on its own (no cross-key rules), for a command with its own
    options that share a key's meaning (postprocess.py --fss_scales); a ConfigError naming ``where``."""
    value = _convert(name, raw, where)
    problem = SCHEMA[name].violation(value)
    if problem is not None:
        raise ConfigError(f"config key '{name}' in {where}: {problem}")
    return value


def _means_unset(raw):
    return raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "null"))


def _number_list(raw, bad, name, where, integers):
    """A yaml list, one number, or a command-line "[20,35]" / "20,35" -> a list of finite floats, or of
    ints when ``integers`` (a value with a fractional part is then refused)."""
    items = raw
    if isinstance(raw, str):
        items = [s for s in raw.strip().strip("[]").replace(" ", "").split(",") if s]
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        items = [raw]
    if not isinstance(items, (list, tuple)):
        raise bad
    out = []
    for v in items:
        if isinstance(v, bool):
            raise bad
        try:
            value = float(v)
        except (TypeError, ValueError):
            raise bad from None
        if not math.isfinite(value):
            raise ConfigError(f"config key '{name}' in {where}: values must be finite, got {raw!r}")
        if integers and value != int(value):
            raise bad
        out.append(int(value) if integers else value)
    return out


def nodata_list(raw, bad, name="nodata", where="the caller"):
    """A yaml list, one value or a command-line "[nan,-9999]" -> the no-data markers as canonical strings, "nan"
    first, then numbers as ``format(v, ".17g")`` (exact; strings, since NaN never equals NaN and a model's value
    must compare equal to the same value given again)."""
    items = raw
    if isinstance(raw, str):
        items = [s for s in raw.strip().strip("[]").replace(" ", "").split(",") if s]
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        items = [raw]
    if not isinstance(items, (list, tuple)):
        raise bad
    values = set()
    for v in items:
        if isinstance(v, bool):
            raise bad
        try:
            value = float(v)
        except (TypeError, ValueError):
            raise bad from None
        if math.isinf(value):
            raise ConfigError(f"config key '{name}' in {where}: values must be nan or finite numbers, got {raw!r}")
        values.add("nan" if math.isnan(value) else format(value, ".17g"))
    return sorted(values, key=lambda s: (s != "nan", float(s) if s != "nan" else 0.0))


def nodata_values(cfg):
    """The ``nodata`` markers of ``cfg`` (a Config or a dict) as floats (NaN for "nan"); () without any."""
    return tuple(float(v) for v in _as_dict(cfg).get("nodata", ()))


def _as_dict(cfg):
    return cfg.to_dict() if isinstance(cfg, Config) else cfg


def forecast_frames(cfg):
    """Frames eval.py/predict.py forecast: ``lead_frames``, or the model's ``output_frames`` when it is 0."""
    return cfg.lead_frames or cfg.output_frames


def frame_shape(cfg):
    """(C, H, W) of the frames the network of ``cfg`` (a Config or a dict) maps: Moving MNIST
    (1, image_size, image_size), own sequences (channels, frame_height, frame_width)."""
    values = _as_dict(cfg)
    if values["dataset"] in GENERATED_DATASETS:
        size = values["image_size"]
        return 1, size, size
    shape = (values["channels"], values["frame_height"], values["frame_width"])
    if 0 in shape:
        raise ConfigError(f"the frame shape (channels, frame_height, frame_width) = {shape} is not known yet: with "
                          "dataset sequences it is read from the data (train.py stores it in the checkpoint); set "
                          "all three or open the data first")
    return shape


def target_channel_indices(cfg):
    """The channels the network of ``cfg`` (a Config or a dict) predicts, as indices into the frames' channels:
    ``target_channels``, or all of them when it is empty."""
    values = _as_dict(cfg)
    return tuple(values["target_channels"]) or tuple(range(frame_shape(values)[0]))


def output_frame_shape(cfg):
    """(C_out, H, W) of the frames the network of ``cfg`` predicts: its ``target_channels`` of ``frame_shape``."""
    _, height, width = frame_shape(cfg)
    return len(target_channel_indices(cfg)), height, width


def selects_channels(cfg):
    """True when ``target_channels`` leaves some input channels out of the output (known once the frames'
    channels are: a config that leaves them to the data is checked again when the data are read)."""
    values = _as_dict(cfg)
    channels, chosen = _known_channels(values), list(values["target_channels"])
    return bool(chosen) and bool(channels) and chosen != list(range(channels))


def _known_channels(values):
    """The frames' channel count, 0 while own data have not been read."""
    return 1 if values["dataset"] in GENERATED_DATASETS else values["channels"]


def with_derived_keys(cfg, stored):
    """``cfg`` with the keys it leaves to the data (``DERIVED_FROM_DATA``) taken from ``stored``."""
    changes = {name: getattr(stored, name) for name, unset in DERIVED_FROM_DATA.items()
               if getattr(cfg, name) == unset and getattr(stored, name) != unset}
    return cfg.replace(**changes) if changes else cfg


def is_dbz_data(cfg):
    """True for own sequences normalised from [-10, 60] (HKO-7's pixel = (dBZ + 10) / 70), the data
    HKO-7's rain-rate classes apply to without loss_thresholds."""
    values = _as_dict(cfg)
    return values["dataset"] == "sequences" and values["data_scale"] == "minmax" and \
        (values["data_min"], values["data_max"]) == (-10.0, 60.0)


def frame_tiling(arch, patch_size):
    """(multiple, why): the frame height and width of ``arch`` are multiples of ``multiple``, because the paper
    and stacked networks cut patch_size x patch_size patches and the zoo network halves the frames twice."""
    if arch in PATCH_ARCHS:
        return int(patch_size), f"arch {arch} cuts frames into {int(patch_size)}x{int(patch_size)} patches"
    return 4, "arch zoo halves the frames twice"


def untileable(height, width, arch, patch_size):
    """Why H x W frames do not fit ``arch`` (:func:`frame_tiling`), or None when they do (a side of 0 fits)."""
    multiple, why = frame_tiling(arch, patch_size)
    if height % multiple or width % multiple:
        return f"{height}x{width}, but {why}: height and width must be multiples of {multiple}"
    return None


def data_range_problem(data_min, data_max):
    """Why [data_min, data_max] cannot be mapped to [0, 1] (not finite, or not increasing), or None."""
    low, high = float(data_min), float(data_max)
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        return f"data_min ({low:g}) must be finite and below data_max ({high:g})"
    return None


def scaling_problem(scale, data_min, data_max):
    """What is wrong with data_min/data_max for data_scale ``scale``, or None: minmax needs both
    (:func:`data_range_problem`), auto takes neither."""
    if scale != "minmax":
        if data_min is not None or data_max is not None:
            return "data_min/data_max are only used with data_scale minmax; set data_scale minmax or leave them unset"
        return None
    if data_min is None or data_max is None:
        return ("data_scale minmax needs data_min and data_max (the values mapped to 0 and 1, in the data's units, "
                "e.g. -10 and 60 for dBZ)")
    return data_range_problem(data_min, data_max)


def _check_frame_keys(values, fail):
    size = values["image_size"]
    if values["dataset"] in GENERATED_DATASETS:
        for name, allowed in (("channels", 1), ("frame_height", size), ("frame_width", size)):
            if values[name] not in (0, allowed):
                fail(f"config key '{name}': {values[name]} does not fit dataset {values['dataset']}, whose frames are "
                     f"1 x {size} x {size} (channels x image_size x image_size); leave it 0", name, "dataset")
        return
    problem = untileable(values["frame_height"], values["frame_width"], values["arch"], values["patch_size"])
    if problem:
        fail(f"config keys 'frame_height' x 'frame_width': {problem}", "frame_height", "frame_width", "patch_size",
             "arch")


def _check_data_keys(values, fail):
    """Normalisation, split and skill-threshold keys."""
    problem = scaling_problem(values["data_scale"], values["data_min"], values["data_max"])
    if problem:
        fail(f"config keys 'data_scale', 'data_min', 'data_max': {problem}", "data_scale", "data_min", "data_max")
    if values["val_fraction"] + values["test_fraction"] >= 1:
        fail(f"config keys 'val_fraction' + 'test_fraction' must be < 1 (the rest trains), got "
             f"{values['val_fraction']:g} + {values['test_fraction']:g}", "val_fraction", "test_fraction")
    outside = [t for t in values["thresholds"] if not 0 < t <= 1]
    if values["dataset"] in GENERATED_DATASETS and outside:
        fail(f"config key 'thresholds': {outside[0]:g} is outside (0, 1]: with dataset {values['dataset']} the "
             "values are pixel intensities in [0, 1]", "thresholds", "dataset")


def _check_nodata_keys(values, fail):
    """nodata: own sequences only; loss_frames all would score observed frames whose no-data pixels were filled."""
    if not values["nodata"]:
        return
    if values["dataset"] != "sequences":
        fail(f"config key 'nodata' ({', '.join(values['nodata'])}) is for dataset sequences (own data); Moving MNIST "
             "has no missing pixels: leave nodata empty", "nodata", "dataset")
    if values["loss_frames"] == "all":
        fail("config key 'nodata': loss_frames all is not supported with no-data pixels (the observed frames' "
             "no-data pixels are filled before the network sees them, so they cannot be masked as targets); use "
             "loss_frames output", "nodata", "loss_frames")


def _check_target_channel_keys(values, fail):
    """target_channels: channels the frames have (checked again once the data are read); a subset is refused
    wherever a prediction is read back as an input frame, which needs every channel."""
    chosen, channels = values["target_channels"], _known_channels(values)
    if chosen and channels and chosen[-1] >= channels:
        fail(f"config key 'target_channels': channel {chosen[-1]} does not exist, the frames have {channels} "
             f"channel(s), 0 to {channels - 1}; name channels below {channels}", "target_channels", "channels")
    if not selects_channels(values):
        return
    readers = (
        (values["arch"] == "stacked", "arch", "arch stacked reads its own prediction as its next input frame",
         "use arch paper or zoo"),
        (values["forecaster_input"] == "prediction", "forecaster_input",
         "forecaster_input prediction feeds the forecaster its previous prediction", "use forecaster_input none"),
        (values["residual"], "residual", "residual adds the predicted change to the last frame of every channel",
         "use residual false"),
        (values["lead_frames"] > values["output_frames"], "lead_frames",
         f"lead_frames {values['lead_frames']} rolls the model forward on its own predictions as input frames",
         f"use lead_frames up to output_frames ({values['output_frames']})"),
    )
    for reads, key, why, fix in readers:
        if reads:
            fail(f"config key 'target_channels': {chosen} predicts {len(chosen)} of the {channels} channels, but "
                 f"{why}, which needs all of them; {fix}, or target_channels [] (all channels)",
                 "target_channels", key)


def _check_procedure_keys(values, fail):
    """Keys of the training procedure that only some archs, losses or schedules read: a value that
    would be ignored is refused."""
    arch = values["arch"]
    if arch == "stacked" and values["forecaster_input"] != "none":
        fail("config key 'forecaster_input' is for arch paper; arch stacked always reads its previous frame "
             "(see 'sampling')", "forecaster_input", "arch")
    if values["output_activation"] == "linear" and arch == "zoo":
        fail("config key 'output_activation': linear is only available for arch paper or stacked, not zoo",
             "output_activation", "arch")
    if values["residual"] and values["output_activation"] != "linear":
        fail("config key 'residual': the change is added to a frame, so it needs output_activation linear (a sigmoid "
             "would squash it); set output_activation linear", "residual", "output_activation")
    if values["residual"] and values["forecaster_input"] != "none":
        fail("config key 'residual' is not available with forecaster_input prediction; set forecaster_input none",
             "residual", "forecaster_input")
    if values["residual"] and values["output_bias"] != 0:
        fail(f"config key 'output_bias' ({values['output_bias']:g}) would shift every residual forecast by a constant "
             "from the start; set output_bias 0 with residual true", "output_bias", "residual")
    if values["output_activation"] == "linear" and values["loss"] == "bce":
        fail("config key 'loss': bce needs output_activation sigmoid (cross-entropy of logits); use mse or "
             "balanced with a linear output", "loss", "output_activation")
    if values["loss_frames"] == "all" and arch == "zoo":
        fail("config key 'loss_frames': all needs arch paper or stacked (the zoo encoder predicts no frames)",
             "loss_frames", "arch")
    if values["sampling"] != "none" and arch != "stacked":
        fail(f"config key 'sampling': {values['sampling']} needs arch stacked (the only arch that reads true "
             "frames after the observed ones)", "sampling", "arch")
    if values["sampling"] == "reverse" and values["reverse_sampling_start"] >= values["reverse_sampling_stop"]:
        fail("config key 'reverse_sampling_start' must be below 'reverse_sampling_stop', got "
             f"{values['reverse_sampling_start']:g} and {values['reverse_sampling_stop']:g}",
             "reverse_sampling_start", "reverse_sampling_stop")
    if values["lr_schedule"] == "onecycle":
        if values["warmup_epochs"]:
            fail("config key 'warmup_epochs' is not used by lr_schedule onecycle (its rise is onecycle_pct_start); "
                 "set warmup_epochs 0", "warmup_epochs", "lr_schedule")


def _check_crop_keys(values, fail):
    """crop_size: own sequences only, tileable by the arch, and no per-pixel (peephole) weights."""
    crop = values["crop_size"]
    if not crop:
        return
    if values["dataset"] != "sequences":
        fail(f"config key 'crop_size' ({crop}) is for dataset sequences (own frames); Moving MNIST trains on whole "
             f"{values['image_size']}x{values['image_size']} frames: set crop_size 0", "crop_size", "dataset")
    problem = untileable(crop, crop, values["arch"], values["patch_size"])
    if problem:
        fail(f"config key 'crop_size': crops of {problem}", "crop_size", "arch", "patch_size")
    if values["peephole"]:
        fail("config key 'crop_size': peephole weights are per pixel, so a network with them only runs on the frame "
             "size it was built for; set peephole false or crop_size 0", "crop_size", "peephole")


def _model_frame(values):
    """(H, W) of the frames the model of ``values`` was built for (0 on a side not read from the data yet)."""
    if values["dataset"] in GENERATED_DATASETS:
        return values["image_size"], values["image_size"]
    return values["frame_height"], values["frame_width"]


def deployment_frame(cfg):
    """(H, W) of the frames an export of ``cfg`` (a Config or a dict) maps: export_height x export_width, a side
    left 0 taken from the model's frame."""
    values = _as_dict(cfg)
    height, width = _model_frame(values)
    return values["export_height"] or height, values["export_width"] or width


def _check_export_keys(values, fail):
    """export_height/export_width: tileable by the arch, square for Moving MNIST (image_size), and none other than
    the model's frame for a network with per-pixel (peephole) weights."""
    if not (values["export_height"] or values["export_width"]):
        return
    names = ("export_height", "export_width")
    height, width = deployment_frame(values)
    problem = untileable(height, width, values["arch"], values["patch_size"])
    if problem:
        fail(f"config keys 'export_height' x 'export_width': {problem}", *names, "arch", "patch_size")
    trained = _model_frame(values)
    if values["peephole"] and 0 not in trained and (height, width) != trained:
        fail(f"config keys 'export_height' x 'export_width': the model has peephole weights, which are per pixel, "
             f"so it only runs on the {trained[0]}x{trained[1]} frames it was built for; omit "
             "--export_height and --export_width", *names, "peephole")
    if values["dataset"] not in GENERATED_DATASETS:
        return
    smallest = SCHEMA["image_size"].min
    if height != width:
        fail(f"config keys 'export_height' x 'export_width': {height}x{width}, but Moving MNIST frames (dataset "
             f"{values['dataset']}) are square (image_size x image_size); give both the same value", *names)
    if height < smallest:
        fail(f"config keys 'export_height' x 'export_width': {height}x{width}, but Moving MNIST frames (dataset "
             f"{values['dataset']}) are at least {smallest:g}x{smallest:g} (image_size >= {smallest:g})", *names)


def deployment_config(cfg):
    """``cfg`` with its frame keys set to the deployment frame (:func:`deployment_frame`) and export_height/
    export_width back to 0: the config an exported model carries, so every reader of the file (eval_onnx.py,
    predict.py, preprocess.py) sees the frames the file maps, not the training data's."""
    height, width = deployment_frame(cfg)
    if cfg.dataset in GENERATED_DATASETS:  # square (checked); frame keys stay 0 or follow image_size
        frame = dict(image_size=height, **{n: height for n in ("frame_height", "frame_width") if getattr(cfg, n)})
    else:
        frame = dict(frame_height=height, frame_width=width)
    return cfg.replace(export_height=0, export_width=0, **frame)


def _check_balance_keys(values, fail):
    thresholds, weights = values["loss_thresholds"], values["loss_weights"]
    if thresholds and sorted(set(thresholds)) != list(thresholds):
        fail(f"config key 'loss_thresholds': must be increasing, got {thresholds}", "loss_thresholds")
    if any(w <= 0 for w in weights):
        fail(f"config key 'loss_weights': weights must be > 0, got {weights}", "loss_weights")
    classes = (len(thresholds) if thresholds else HKO7_CLASS_BOUNDARIES) + 1
    if weights and len(weights) != classes:
        fail(f"config key 'loss_weights': {len(weights)} weights for {classes} intensity classes (one more than "
             "loss_thresholds)", "loss_weights", "loss_thresholds")
    if values["loss"] == "balanced" and not thresholds and not is_dbz_data(values):
        fail("config key 'loss': balanced needs loss_thresholds in the data's units (HKO-7's rain-rate classes "
             "are the default only for dBZ data: dataset sequences, data_scale minmax, data_min -10, data_max 60)",
             "loss", "loss_thresholds")
    if thresholds and not weights and len(thresholds) != HKO7_CLASS_BOUNDARIES:
        fail(f"config key 'loss_thresholds': {len(thresholds)} thresholds need loss_weights ({len(thresholds) + 1} "
             "values); HKO-7's weights are for 5", "loss_thresholds", "loss_weights")


def parse_best_metric(text):
    """(name, threshold) of a best_metric value: ("mse", None), ..., ("csi", 35.0) for "csi@35";
    ValueError saying what is wrong."""
    name, at, value = str(text).strip().lower().partition("@")
    if name in BEST_METRICS and not at:
        return name, None
    if name != "csi":
        raise ValueError(f"{text!r} is not one of {', '.join(BEST_METRICS)}, csi@THRESHOLD")
    try:
        threshold = float(value)
    except ValueError:
        raise ValueError(f"{text!r}: csi needs a threshold in the data's units after '@', e.g. csi@35") from None
    if not math.isfinite(threshold):
        raise ValueError(f"{text!r}: the csi threshold must be a finite number")
    return "csi", threshold


def _value_range(values):
    """(low, high, what) of the values of the data in its own units (a threshold's units), or None while the
    data's dtype is unknown (train.py checks again once it has read it)."""
    if values["dataset"] in GENERATED_DATASETS:
        return 0.0, 1.0, f"dataset {values['dataset']}: pixel values in [0, 1]"
    if values["data_scale"] == "minmax":
        return values["data_min"], values["data_max"], "data_min .. data_max"
    if not values["data_dtype"]:
        return None
    import numpy as np

    dtype = np.dtype(values["data_dtype"])  # auto: integers / their dtype's maximum, floats as they are
    high = float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0
    return 0.0, high, f"data_scale auto, {dtype.name} data"


def _check_best_metric(values, fail):
    try:
        name, threshold = parse_best_metric(values["best_metric"])
    except ValueError as err:
        fail(f"config key 'best_metric': {err}", "best_metric")
    if name != "auto" and values["val_sequences"] == 0:
        fail(f"config key 'best_metric': {values['best_metric']} is a validation score but val_sequences is 0 (no "
             "validation); set val_sequences > 0, or best_metric auto (the training loss then chooses best.ckpt)",
             "best_metric", "val_sequences")
    if name == "bmse_bmae" and not values["loss_thresholds"] and not is_dbz_data(values):
        fail("config key 'best_metric': bmse_bmae needs loss_thresholds in the data's units (HKO-7's classes are "
             "the default only for dBZ data: dataset sequences, data_scale minmax, data_min -10, data_max 60)",
             "best_metric", "loss_thresholds")
    bounds = _value_range(values) if name == "csi" else None
    if bounds is not None and not bounds[0] < threshold <= bounds[1]:
        fail(f"config key 'best_metric': csi@{threshold:g} is outside ({bounds[0]:g}, {bounds[1]:g}] ({bounds[2]}), "
             "where CSI has no meaning (every value or none is an event); give a threshold in the data's units "
             "inside that range", "best_metric", "dataset")


def _check_values(values, origin=None):
    """Validate every key and the cross-key rules. ``origin`` maps a key to where its value came from
    (a yaml path, "the command line", ...), named in the error."""
    origin = origin or {}

    def fail(message, *names):
        places = sorted({origin[n] for n in names if n in origin})
        raise ConfigError(message + (f" (set in {' and '.join(places)})" if places else ""))

    for name, value in values.items():
        problem = SCHEMA[name].violation(value)
        if problem is not None:
            fail(f"config key '{name}': {problem}", name)
    if values["input_frames"] + values["output_frames"] > 20 and values["dataset"] == "mnist":
        fail("config keys 'input_frames' + 'output_frames' must be <= 20 (the length of "
             f"mnist_test_seq.npy sequences), got {values['input_frames']} + {values['output_frames']}",
             "input_frames", "output_frames")
    multiple, _ = frame_tiling(values["arch"], values["patch_size"])
    _check_frame_keys(values, fail)
    _check_data_keys(values, fail)
    _check_balance_keys(values, fail)
    _check_crop_keys(values, fail)
    _check_export_keys(values, fail)
    _check_nodata_keys(values, fail)
    _check_target_channel_keys(values, fail)
    _check_best_metric(values, fail)
    if values["image_size"] % multiple and values["arch"] == "zoo":
        fail("config key 'image_size' must be a multiple of 4 for arch zoo", "image_size")
    if values["image_size"] % multiple:
        fail(f"config key 'patch_size': {values['patch_size']} does not divide image_size {values['image_size']}",
             "patch_size", "image_size")
    if values["arch"] == "zoo" and values["forecaster_input"] != "none":
        fail(f"config key 'forecaster_input': {values['forecaster_input']!r} is only available for arch paper "
             "(the zoo forecaster has no input)", "forecaster_input", "arch")
    _check_procedure_keys(values, fail)
    for other, what in (("val_seed", "validation"), ("seed", "training")):
        if values["test_seed"] == values[other]:
            fail(f"config key 'test_seed' must differ from '{other}' (both {values[other]}): the generated evaluation "
                 f"set would repeat the {what} sequences; choose another test_seed", "test_seed", other)
    if values["min_lr"] > values["lr"]:
        fail(f"config key 'min_lr' ({values['min_lr']}) must not exceed 'lr' ({values['lr']})", "min_lr", "lr")
    # a data path given by the user must be read: dataset synthetic would silently ignore it
    if values["dataset"] == "synthetic" and origin.get("data_path") in ("the command line", "the caller"):
        raise ConfigError(f"config key 'data_path' ({values['data_path']}, set in {origin['data_path']}) is not used "
                          "with dataset synthetic (embedded generated digits); pass --dataset mnist to read "
                          "the MNIST files there, or drop --data_path")


def read_yaml(path):
    """The mapping of a config yaml (safe_load only)."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path} not found (--config_path; the files are in configs/)")
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(f"config file {path} is not valid yaml{where}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of key: value")
    return data or {}


def load_config(argv=None, config_path=None, base=None, **overrides):
    """The effective config: defaults < yaml file < command line < ``overrides``. ``base`` (a Config,
    e.g. a checkpoint's) replaces the defaults and, unless a yaml file is named, the default yaml file."""
    cli = parse_overrides(list(argv or []))
    path = cli.pop("config_path", None) or config_path or ("" if base is not None else DEFAULT_CONFIG)
    values = base.to_dict() if base is not None else {name: key.default for name, key in SCHEMA.items()}
    layers = ((path, read_yaml(path) if path else {}), ("the command line", cli), ("the caller", overrides))
    values.update({name: _convert(name, raw, where) for where, source in layers for name, raw in source.items()})
    origin = {name: where for where, source in layers for name in source}
    _check_values(values, origin)
    return Config(values, path or base.config_path)


def _model_name(model):
    return f"checkpoint {model}" if model.endswith(".ckpt") else f"model {model}"


def resolve_config(argv=None, stored=None, model="", **overrides):
    """The one config resolver of every entry point: ``load_config`` for a command that starts from
    nothing; for one that starts from a trained model, its ``stored`` config (read from the file
    ``model``) with the command line applied as the keys' roles say (MODEL_KEYS / RUN_ONLY_KEYS). A yaml
    file then supplies only run-only keys (role run), so the training yaml of a run with overrides may be
    passed as it is."""
    if stored is None:
        return load_config(argv, **overrides)
    cli = parse_overrides(list(argv or []))
    path = cli.pop("config_path", None) or ""
    run = load_config([], config_path=path) if path else None
    values = dict(stored.to_dict(), **{n: getattr(run, n) if run is not None else SCHEMA[n].default
                                       for n in RUN_ONLY_KEYS})
    if run is None and "output_dir" not in cli:  # a checkpoint RUN/ckpt/NAME.ckpt writes into RUN
        folder = os.path.dirname(os.path.abspath(model))
        if model.endswith(".ckpt") and os.path.basename(folder) == "ckpt":
            values["output_dir"] = os.path.dirname(folder)
    origin = {}
    for name, raw in dict(cli, **overrides).items():
        value = _convert(name, raw, "the command line")
        left_to_data = name in DERIVED_FROM_DATA and value == DERIVED_FROM_DATA[name]
        if name in MODEL_KEYS and name not in FRAME_KEYS and value != values[name] and not left_to_data:
            raise ConfigError(f"{_model_name(model)} was built for {name}={values[name]} but the config asks for "
                              f"{name}={value}; omit --{name} (the model's own value is used)")
        values[name] = value
        origin[name] = "the command line"
    _check_same_frames(stored, values, origin, model)
    _check_values(values, origin)
    return Config(values, path or model)


def _check_same_frames(stored, values, origin, model):
    """The frame shape is compared as a whole, so a model of 32x32 own frames scores the frames of
    ``--dataset mnist --image_size 32``."""
    if not any(name in origin for name in FRAME_KEYS + ("dataset",)):
        return
    trained, asked = frame_shape(stored), frame_shape(values)
    if trained != asked:
        changed = ", ".join(f"--{name}" for name in FRAME_KEYS + ("dataset",) if name in origin)
        export = "; export.py --export_height/--export_width export it for another frame size" \
            if model.endswith(".ckpt") else ""
        raise ConfigError(f"{_model_name(model)} maps frames of {'x'.join(map(str, trained))} (C x H x W) but the "
                          f"config asks for {'x'.join(map(str, asked))}; omit {changed} (the model's own frame shape "
                          f"is used){export}")


def config_from_dict(values, where):
    """Rebuild a config saved with a run or a checkpoint (unknown keys refused)."""
    merged = {name: key.default for name, key in SCHEMA.items()}
    merged.update({name: _convert(name, raw, where) for name, raw in values.items()})
    _check_values(merged, {name: where for name in values})
    return Config(merged, where)


def _defaults_in_effect(argv, own_options):
    """(config, description) a command would start from with this command line, for --help; no config
    (the schema defaults) when it cannot be built."""
    try:
        cli = {k: v for k, v in parse_overrides(argv).items() if k not in own_options}
        cfg = load_config(overrides_argv(cli))
        return cfg, f"defaults in effect: {cfg.config_path or 'the schema'}{' + the command line' if cli else ''}"
    except UserError as err:
        return None, f"defaults: the schema's ({err})"


def keys_help(argv, own_options):
    """The config keys' part of an entry point's ``--help`` (``src.cli.run_cli(config_keys=keys_help)``):
    (title, [(key, metavar, text)]), each key with its type, the default in effect for ``argv`` and its
    allowed values; ``own_options`` (the command's own option names) are left out."""
    cfg, where = _defaults_in_effect(list(argv), own_options)
    rows = [("config_path", "FILE", "yaml file of config keys (configs/*.yaml)")]
    for key in (k for k in SCHEMA.values() if k.name not in own_options):
        default = getattr(cfg, key.name) if cfg is not None else key.default
        allowed = f"; one of {', '.join(map(str, key.choices))}" if key.choices else ""
        rows.append((key.name, key.type.upper(), f"{key.help} [{key.type}, default {default!r}{allowed}]"))
    return f"config keys (--key value or --key=value; {where})", rows


def markdown_table():
    """The table of keys in docs/configuration.md."""
    rows = ["| key | type | default | role | meaning |", "|---|---|---|---|---|"]
    for k in SCHEMA.values():
        choices = f" ({' / '.join(map(str, k.choices))})" if k.choices else ""
        meaning = f"{k.help}{choices}".replace("|", "\\|")  # a bare | would split the markdown cell
        rows.append(f"| `{k.name}` | {k.type} | `{k.default}` | {k.role} | {meaning} |")
    return "\n".join(rows)


FROM_MODEL_TEXT = {ALWAYS: "always the model's; a different value is refused in one line naming both",
                   UNLESS_GIVEN: "the model's, unless the command line gives one",
                   NEVER: "never the model's: defaults < yaml file < command line"}


def roles_table():
    """The table of roles in docs/configuration.md: what each role decides, its two rules, its keys."""
    rows = ["| role | decides | from a trained model (eval.py, export.py, predict.py, eval_onnx.py) | "
            "on train.py --resume | keys |", "|---|---|---|---|---|"]
    for role in ROLES.values():
        on_resume = "may change" if role.may_change_on_resume else "refused unless --allow_config_change true"
        keys = ", ".join(f"`{name}`" for name in keys_with_role(role.name))
        rows.append(f"| {role.name} | {role.decides} | {FROM_MODEL_TEXT[role.from_model]} | {on_resume} | {keys} |")
    return "\n".join(rows)


def _main(argv):
    """``python -m src.config`` prints the role and key tables; ``--get KEY [--key value ...]`` one value."""
    if argv[:1] == ["--get"] and len(argv) >= 2:
        if argv[1] not in SCHEMA:
            raise ConfigError(f"unknown config key '{argv[1]}'{_suggest(argv[1])}")
        print(getattr(load_config(argv[2:]), argv[1]))
    else:
        print(f"{roles_table()}\n\n{markdown_table()}")
    return 0


if __name__ == "__main__":
    run_cli(_main, config_keys=keys_help)
