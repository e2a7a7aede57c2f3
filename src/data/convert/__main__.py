"""Convert image frames, an HDF5 dataset or a NetCDF variable into the (N, T, C, H, W) .npy train.py reads.

SOURCE is a folder with one sub-folder of frames per sequence (PNG, JPEG, TIFF; frames in natural order of
their names: frame2 before frame10), or an HDF5 (--dataset NAME) or NetCDF (--variable NAME) file whose array
is (T, H, W), (N, T, H, W) or (N, T, C, H, W) (--layout for other axis orders). OUT.npy is written atomically
next to OUT.json (source, units, scaling, value range, bit depth); the train.py options are printed.
"""
import shlex

from src.cli import BOOL_WORDS, parse_overrides, run_cli
from src.data.convert import open_source
from src.data.convert.writer import LAYOUT, check_target, sidecar_path, write_converted
from src.errors import UserError
from src.progress import Progress

_DEFAULTS = {"dataset": "", "variable": "", "layout": "", "grey": False, "fill": "nan", "overwrite": False}
_USAGE = ("usage: python -m src.data.convert SOURCE OUT.npy [--dataset NAME] [--variable NAME] [--layout NTHW] "
          "[--grey false] [--fill nan] [--overwrite false]")


def _option(name, raw):
    if isinstance(_DEFAULTS[name], bool):
        if raw.lower() not in BOOL_WORDS:
            raise UserError(f"--{name}: expected true or false, got {raw!r}; {_USAGE}")
        return BOOL_WORDS[raw.lower()]
    if name == "fill":
        try:
            return None if raw.lower() == "nan" else float(raw)
        except ValueError:
            raise UserError(f"--fill: expected nan or a number, got {raw!r}") from None
    return raw


def parse_arguments(argv):
    """(SOURCE, OUT.npy, options) of the command line."""
    positional = []
    while argv and not argv[0].startswith("--") and len(positional) < 2:
        positional.append(argv.pop(0))
    if len(positional) != 2:
        raise UserError(f"expected SOURCE and OUT.npy; {_USAGE}")
    options = dict(_DEFAULTS, fill=None)
    for name, raw in parse_overrides(argv).items():
        if name not in _DEFAULTS:
            raise UserError(f"unknown option --{name}; {_USAGE}")
        options[name] = _option(name, raw)
    return positional[0], positional[1], options


def _describe(record):
    values = record["value_range"]
    span = "no finite values" if values is None else f"{values[0]:g} .. {values[1]:g}"
    units = f" {record['units']}" if record.get("units") else ""
    depth = f", {record['bit_depth']}-bit source" if record.get("bit_depth") else ""
    missing = f", {record['non_finite_values']} NaN" if record["non_finite_values"] else ""
    return f"values {span}{units} ({record['dtype']}{depth}{missing})"


def report(record, out_path):
    """The lines printed after a conversion: what was written, the values, the train.py options, notes."""
    lines = [f"wrote {out_path}: {record['dtype']} {tuple(record['shape'])} (data_layout {LAYOUT}) from "
             f"{record['source']} ({record['kind']})",
             f"wrote {sidecar_path(out_path)}: source, units, scaling, value range",
             _describe(record),
             "train with: python train.py " + " ".join(shlex.quote(str(o)) for o in record["train_options"])]
    if record["non_finite_values"]:
        low = record["value_range"][0] if record["value_range"] else 0
        lines.append(f"note: {record['non_finite_values']} values are NaN (fill values or missing data): the train "
                     "options above hold --nodata nan, which fills them with the background in the inputs and leaves "
                     "them out of the loss and the scores (train.py refuses NaN without it); or convert again with "
                     f"--fill VALUE (e.g. --fill {low:g}, the lowest value) to train on VALUE there")
    lines += [f"note: {note}" for note in record["notes"]]
    return lines


def main(argv):
    source_path, out_path, options = parse_arguments(list(argv))
    check_target(out_path, options["overwrite"])  # before reading anything
    source = open_source(source_path, options["dataset"], options["variable"], options["layout"], options["grey"])
    progress = Progress(source.shape[0], "converting", unit="sequence")
    command = "python -m src.data.convert " + " ".join(shlex.quote(a) for a in argv)
    try:
        record = write_converted(source, out_path, options["overwrite"], options["fill"], command, progress.update)
    finally:
        progress.clear()
    print("\n".join(report(record, out_path)))
    return 0


if __name__ == "__main__":
    run_cli(main, doc=f"{__doc__}\n{_USAGE}", options=_DEFAULTS)
