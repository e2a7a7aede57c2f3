"""The run directory: what lives where, and refusing to clobber an existing run.

    <output_dir>/config.yaml            effective config of the run
    <output_dir>/log.csv, history.json  one row per epoch (loss, validation metrics, lr, time)
    <output_dir>/ckpt/convlstm-<epoch>_<step>.ckpt, last.ckpt, best.ckpt
"""
import csv
import io
import json
import os
import shutil

from src.errors import ConfigError, UserError
from src.io import write_text_atomic


class RunDir:
    def __init__(self, output_dir):
        self.root = os.path.abspath(output_dir)
        self.ckpt_dir = os.path.join(self.root, "ckpt")
        self.config = os.path.join(self.root, "config.yaml")
        self.log_csv = os.path.join(self.root, "log.csv")
        self.history_json = os.path.join(self.root, "history.json")
        self.last = os.path.join(self.ckpt_dir, "last.ckpt")
        self.best = os.path.join(self.ckpt_dir, "best.ckpt")

    def numbered(self, epoch, global_step):
        """Model-zoo naming: convlstm-<epoch>_<step>.ckpt (epoch 1-based, global step)."""
        return os.path.join(self.ckpt_dir, f"convlstm-{epoch}_{global_step}.ckpt")

    def numbered_checkpoints(self):
        """Numbered checkpoints, oldest first."""
        if not os.path.isdir(self.ckpt_dir):
            return []
        found = []
        for name in os.listdir(self.ckpt_dir):
            if name.startswith("convlstm-") and name.endswith(".ckpt"):
                try:
                    epoch, step = name[len("convlstm-"):-len(".ckpt")].split("_")
                    found.append((int(step), int(epoch), os.path.join(self.ckpt_dir, name)))
                except ValueError:
                    continue
        return [p for _, _, p in sorted(found)]

    def prepare(self, resume, overwrite):
        """Create the directory; refuse to start over an existing run unless asked to."""
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise ConfigError(f"config key 'output_dir': {self.root} exists and is not a directory")
        if (os.path.isfile(self.config) or os.path.isfile(self.last)) and not resume:  # holds a run
            if not overwrite:
                raise ConfigError(f"config key 'output_dir': {self.root} already holds a run; pass --resume auto "
                                  "to continue it, --overwrite true to replace it, or choose another --output_dir")
            self.clear()
        os.makedirs(self.ckpt_dir, exist_ok=True)

    def clear(self):
        """Remove a previous run's files (only with --overwrite)."""
        if os.path.isdir(self.ckpt_dir):
            shutil.rmtree(self.ckpt_dir)
        for path in (self.config, self.log_csv, self.history_json):
            if os.path.exists(path):
                os.remove(path)

    def write_history(self, rows):
        """Rewrite log.csv and history.json atomically with every epoch row so far."""
        if not rows:
            return
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)
        _atomic_write(self.log_csv, buf.getvalue())
        _atomic_write(self.history_json, json.dumps(rows, indent=1))

    def read_history(self):
        if not os.path.isfile(self.history_json):
            return []
        with open(self.history_json, "r", encoding="utf-8") as f:
            return json.load(f)


def _atomic_write(path, text):
    try:
        write_text_atomic(path, text)
    except OSError as err:
        raise UserError(f"could not write {path} ({err.strerror or err}); the previous file is unchanged; "
                        "free disk space (or fix permissions) and continue with --resume auto") from err
