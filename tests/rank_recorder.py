"""Test-only: record what every rank of a training run did, without any hook in src/.

``install(prefix)`` patches the Trainer so that each rank (not only rank 0) saves
``<prefix>rank<r>.npz`` at the end of ``fit()``: its final weights (``param/<name>``), a digest
of every training sequence it consumed (``digests``, steps x batch) and its epoch history
(``history``, json). tests/test_distributed.py uses it in-process and, for real launcher runs,
through ``python tests/rank_recorder.py PREFIX SCRIPT ARGS...`` (see ``interpreter``), which
installs the patch and then runs SCRIPT as ``__main__``.
"""
import hashlib
import json
import os
import runpy
import sys

import numpy as np


def digest(inputs, targets):
    """The digest recorded for one sequence (numpy arrays)."""
    return hashlib.sha1(np.ascontiguousarray(inputs).tobytes() + np.ascontiguousarray(targets).tobytes()).hexdigest()


def install(prefix, patch=setattr):
    """Patch the Trainer (``patch``: e.g. pytest's monkeypatch.setattr, to undo it after a test)."""
    from src.training.trainer import Trainer

    real_init, real_fit = Trainer.__init__, Trainer.fit

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.recorded_digests = []
        step = self.train_step

        def recording_step(inputs, targets, lr, mask=None, *valid):  # valid: the no-data mask (nodata only)
            x, y = inputs.asnumpy(), targets.asnumpy()
            self.recorded_digests.append([digest(x[b], y[b]) for b in range(len(x))])
            return step(inputs, targets, lr, mask, *valid)

        self.train_step = recording_step

    def fit(self):
        code = real_fit(self)
        params = {f"param/{p.name}": p.asnumpy() for p in self.net.get_parameters()}
        np.savez(f"{prefix}rank{self.ctx.rank}.npz", digests=np.array(self.recorded_digests, dtype=str),
                 history=np.array(json.dumps(self.history)), **params)
        return code

    patch(Trainer, "__init__", init)
    patch(Trainer, "fit", fit)


def load(path):
    data = np.load(path)
    params = {k[len("param/"):]: data[k] for k in data.files if k.startswith("param/")}
    return {"params": params, "digests": data["digests"].tolist(), "history": json.loads(str(data["history"]))}


def interpreter(directory, prefix):
    """An executable for the launchers' PYTHON: runs train.py under the recorder, anything
    else (``-m src.config ...``, ``-c ...``) with the real interpreter."""
    path = os.path.join(directory, "python")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"""#!/bin/sh
case "$1" in
    *train.py) exec "{sys.executable}" "{os.path.abspath(__file__)}" "{prefix}" "$@";;
    *) exec "{sys.executable}" "$@";;
esac
""")
    os.chmod(path, 0o755)
    return path


if __name__ == "__main__":
    prefix, script = sys.argv[1], sys.argv[2]
    repo = os.path.dirname(os.path.abspath(script))
    sys.path.insert(0, repo)
    sys.argv = [script] + sys.argv[3:]
    install(prefix)
    runpy.run_path(script, run_name="__main__")
