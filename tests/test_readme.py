"""The README cannot drift from the code: its commands are run here, in a tiny mode.

Every command line in the ```bash blocks of README.md and of the pages under docs/ (DOC_FILES)
must match exactly one rule below: either it is executed (verbatim, in a scratch directory that
mirrors the repository, with small-network overrides appended for keys the command does not set
itself) or it is skipped for a stated reason (needs Ascend/GPU/310 hardware, the network, or is a
usage synopsis). A new command that matches no rule fails the test. The links of README.md and
README_CN.md must point to existing files and headings, and both READMEs must show the same
commands, sections and tables.
"""
import glob
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from src.config import markdown_table, roles_table
from tests.processes import wait_for_exit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
README_CN = os.path.join(REPO, "README_CN.md")
DOCS = os.path.join(REPO, "docs")
# the files whose bash commands are run or skipped by rule: the README, then the detail pages
DOC_FILES = [README] + sorted(glob.glob(os.path.join(DOCS, "*.md")))
CONFIGURATION = os.path.join(DOCS, "configuration.md")  # the generated table of config keys

# small networks so every command runs in seconds on CPU
TINY_64 = ["--hidden_channels", "4", "--kernel_size", "3", "--epochs", "1", "--steps_per_epoch", "1",
           "--batch_size", "2", "--val_sequences", "2", "--num_workers", "1", "--mode", "pynative"]
TINY_32 = TINY_64 + ["--image_size", "32", "--input_frames", "3", "--output_frames", "2"]

SKIP = [
    (r"^bash download\.sh", "needs the internet (download.sh is tested offline in tests/test_data_download.py)"),
    (r"\bAscend\b|ascend\.yaml|output/ascend/|run_distribute_train\.sh|run_infer_310\.sh", "needs Ascend hardware"),
    (r"gpu\.yaml|run_distribute_train_gpu\.sh", "needs GPUs"),
    (r"run_distribute_train_cpu\.sh", "run by tests/test_distributed.py through the same launcher"),
    (r"--export_height|--export_width", "export for a deployment frame of a trained own-data model: "
                                         "tests/test_own_data_crops.py exports a model trained on crops for a larger "
                                         "frame (MINDIR, ONNX) and checks it against the checkpoint"),
    (r"rain_cells|rain_cpu|rain\.mindir", "own-data example: tests/test_configs.py runs configs/rain_cpu.yaml end to end "
                                           "(train, eval, export, predict), tests/test_data_rain_cells.py the generator"),
    (r"radar_storms|data/storms|output/storms", "the harder own-data example: tests/test_data_radar_storms.py runs the "
                                                "generator's command line, tests/test_own_data_reports.py eval.py "
                                                "--baseline pysteps, tests/test_configs.py the recipe"),
    (r"--lead_frames", "rollouts of a trained own-data model: tests/test_own_data_rollout.py runs eval.py, eval_onnx.py "
                       "and predict.py --lead_frames on a tiny rain-cell model (checkpoint, MINDIR, ONNX)"),
    (r"radar_sat", "several channels in, one out: tests/test_own_data_target_channels.py trains a 3-channel file with "
                   "--target_channels 0 and runs eval.py, predict.py, export.py and the Ascend 310 files on it"),
    (r"\[[A-Z_]+\]|\[--", "usage synopsis"),
    (r"^pip install -r requirements-(onnx|pysteps)\.txt", "requirements-test.txt installs it"),
    (r"bench/", "benchmarks take minutes to tens of minutes and assert nothing"),
    (r"pip install -r requirements\.txt -r requirements-test\.txt && python -m pytest", "the test command itself"),
]


def read(path):
    return open(path, encoding="utf-8").read()


def readme_commands(files=None):
    """Command lines of the bash blocks of ``files`` (default DOC_FILES), in order, each once
    (continuations joined, comments dropped)."""
    commands = []
    for path in DOC_FILES if files is None else files:
        for block in re.findall(r"```bash\n(.*?)```", read(path), flags=re.S):
            joined = block.replace("\\\n", " ")
            for line in joined.splitlines():
                line = line.split(" #")[0].strip() if not line.strip().startswith("python -c") else line.strip()
                line = re.sub(r"\s+", " ", line)
                if line and not line.startswith("#") and line not in commands:
                    commands.append(line)
    return commands


def skip_reason(command):
    for pattern, reason in SKIP:
        if re.search(pattern, command):
            return reason
    return None


def with_overrides(command, tiny):
    """Append the tiny overrides whose keys the command does not set itself."""
    words = shlex.split(command)
    extra = []
    for key, value in zip(tiny[::2], tiny[1::2]):
        if key not in words:
            extra += [key, value]
    return command + " " + " ".join(extra)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch copy of the repository's layout (symlinks) with a tiny test-set file in ./data."""
    from tests.data_files import write_test_file
    root = tmp_path_factory.mktemp("readme")
    for name in os.listdir(REPO):
        if not name.startswith(".") and name not in ("output", "data", "tests"):
            os.symlink(os.path.join(REPO, name), root / name)
    rng = np.random.default_rng(0)
    os.makedirs(root / "data")
    write_test_file(str(root / "data" / "mnist_test_seq.npy"), (rng.random((16, 20, 64, 64)) > 0.9).astype(np.uint8) * 255)
    np.save(root / "my_frames.npy", (rng.random((2, 10, 64, 64)) > 0.9).astype(np.uint8) * 255)
    bindir = root / ".bin"
    os.makedirs(bindir)
    for name in ("python", "python3"):  # a wrapper, not a symlink: a venv is found from the real path
        (bindir / name).write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        os.chmod(bindir / name, 0o755)
    return root


def run(command, cwd, timeout=300):
    env = dict(os.environ, PYTHONPATH=REPO, PYTHON=sys.executable,
               PATH=f"{cwd}/.bin{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"README command failed: {command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def wait_for_pid_file(path, timeout=240):
    pid = int(open(path).read())
    if wait_for_exit(pid, timeout):
        return
    os.kill(pid, 9)
    raise AssertionError(f"background training {pid} did not finish in {timeout} s")


def test_config_table_matches_the_schema():
    assert markdown_table() in read(CONFIGURATION)


def test_role_table_matches_the_schema():
    assert roles_table() in read(CONFIGURATION)


def test_ci_runs_the_readme_test_command():
    test_command = ("python3 -m venv .venv && . .venv/bin/activate && "
                    "pip install -r requirements.txt -r requirements-test.txt && python -m pytest -q tests")
    assert test_command in readme_commands([README])
    assert test_command in open(os.path.join(REPO, ".ci", "run"), encoding="utf-8").read()


def test_quick_start_is_exactly_two_commands():
    text = read(README)
    quick = text.split("# Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [l for l in quick.splitlines() if l.strip() and not l.strip().startswith("#")]
    assert len(lines) == 2 and lines[0].endswith("bash scripts/run_demo.sh")


def test_docs_are_read_and_every_command_has_a_rule():
    """The detail pages are part of DOC_FILES, and every command of README.md and docs/*.md is
    either run by a runner or skipped for a stated reason."""
    assert len(DOC_FILES) > 1 and CONFIGURATION in DOC_FILES
    commands = readme_commands()
    assert set(readme_commands([README])) < set(commands)  # the docs add commands of their own
    unmatched = [c for c in commands if skip_reason(c) is None and not RUNNERS_MATCH(c)]
    assert not unmatched, f"README/docs commands with no rule in tests/test_readme.py: {unmatched}"


@pytest.mark.slow
def test_readme_commands_run(workdir):
    """Run every runnable README/docs command, in order of dependency (train before export ...)."""
    commands = readme_commands()
    unmatched = [c for c in commands if skip_reason(c) is None and not RUNNERS_MATCH(c)]
    assert not unmatched, f"README/docs commands with no rule in tests/test_readme.py: {unmatched}"
    runnable = [c for c in commands if skip_reason(c) is None]
    ordered = sorted(runnable, key=lambda c: next(i for i, (p, _) in enumerate(RUNNERS) if re.search(p, c)))
    for command in ordered:
        handler = next(h for p, h in RUNNERS if re.search(p, command))
        handler(command, workdir)


def _train_foreground(command, cwd):
    out = run(with_overrides(command, TINY_64), cwd)
    assert "epoch: 1 step: 1, loss is" in out and os.path.isfile(cwd / "output" / "cpu_small" / "ckpt" / "best.ckpt")


def _train_background(command, cwd):
    out = run(with_overrides(command, TINY_64 + ["--output_dir", "output/standalone"]), cwd)
    assert "training started" in out
    wait_for_pid_file(cwd / "output" / "standalone" / "train.pid")
    assert "loss is" in open(cwd / "output" / "standalone" / "train.log").read()


def _demo(command, cwd):
    command = command.split("&&")[-1].strip()  # the install part is what CI does before the tests
    out = run(with_overrides(command, TINY_32), cwd)
    strip = re.search(r"^prediction strip .*: (\S+\.png)$", out, flags=re.M).group(1)
    assert os.path.getsize(os.path.join(cwd, strip)) > 0 and os.path.getsize(os.path.join(cwd, strip[:-4] + ".gif")) > 0
    rows = [line.split()[0] for line in out.splitlines() if re.match(r"^(model|predict-zeros|repeat-last-frame) ", line)]
    assert rows == ["model", "predict-zeros", "repeat-last-frame"], out[-2000:]
    assert re.search(r"^the model beats ", out, flags=re.M) and "sequences of generated test set" in out
    plot = re.search(r"^per-frame metrics plot: (\S+\.png)", out, flags=re.M).group(1)
    assert os.path.getsize(os.path.join(cwd, plot)) > 0
    assert out.rstrip().splitlines()[-1] == "next: the 15-minute quality run, bash bench/cpu_quality.sh ./output/quality"


def _data_look(command, cwd):
    out = run(command, cwd)
    if "save_frames_png" in command:
        assert os.path.getsize(cwd / "output" / "sequence.png") > 0
    else:
        assert "inputs (10, 1, 64, 64) targets (10, 1, 64, 64)" in out


def _flops(command, cwd):
    assert "**total**" in run(command, cwd)


def _export(command, cwd):
    out = run(command, cwd)
    assert "parity" in out and os.path.isfile(cwd / "convlstm.mindir")


def _predict(command, cwd):
    run(with_overrides(command, ["--output_dir", "output/predict"]), cwd)
    pred = np.load(cwd / "output" / "predict" / "predictions.npy")
    assert pred.shape[1:] == (10, 64, 64) and np.isfinite(pred).all()


def _evaluate(command, cwd):
    """Evaluation commands, on the tiny checkpoint trained by the train.py command."""
    out = run(with_overrides(command, ["--hidden_channels", "4", "--kernel_size", "3", "--mode", "pynative",
                                       "--val_sequences", "4"]), cwd)
    assert re.search(r"^\s+mean\s+[0-9.]+", out, flags=re.M), out[-2000:]


def _evaluate_onnx(command, cwd):
    """ONNX Runtime evaluation of the file the ONNX export command wrote."""
    out = run(with_overrides(command, ["--num_sequences", "2"]), cwd)
    assert re.search(r"^result: mse=", out, flags=re.M) and "model=" in out, out[-2000:]


def _convert(command, cwd):
    """The converter's examples (docs/own_data.md), on small inputs made on the spot."""
    from tests.test_data_convert import write_example_sources

    write_example_sources(str(cwd))
    out = run(command, cwd)
    printed = re.search(r"^train with: python train\.py (.*)$", out, flags=re.M).group(1)
    assert printed.startswith("--dataset sequences --data_path data/"), out[-2000:]
    if "radar_gaps" in command:  # NaN in the output: the printed options train on them as no-data pixels
        assert printed.endswith(" --nodata nan"), printed
    if "my_video" in command:  # the documented train.py command is the one the converter prints
        documented = next(c for c in readme_commands() if c.startswith("python train.py") and "my_video" in c)
        assert documented == f"python train.py {printed} --output_dir output/my_video", printed


def _train_converted(command, cwd):
    run(with_overrides(command, TINY_64), cwd)
    assert os.path.isfile(cwd / "output" / "my_video" / "ckpt" / "best.ckpt")


def _evaluate_converted(command, cwd):
    out = run(command, cwd)
    assert re.search(r"^result: mse=", out, flags=re.M) and "my_video.npy" in out, out[-2000:]


def _train_no_data(command, cwd):
    out = run(with_overrides(command, TINY_64), cwd)
    assert re.search(r"no-data nan, \d+ of \d+ values of the file", out), out[-2000:]
    assert os.path.isfile(cwd / "output" / "radar_gaps" / "ckpt" / "best.ckpt")


def _evaluate_no_data(command, cwd):
    out = run(command, cwd)
    assert re.search(r"^no data \(nan\): \d+ of \d+ target values", out, flags=re.M), out[-2000:]
    assert os.path.isfile(cwd / "output" / "radar_gaps" / "eval" / "vis" / "seq_0000.png")


# (pattern, handler) in the order they must run
RUNNERS = [
    (r"^python -m src\.models\.flops", _flops),
    (r"^python -c", _data_look),
    (r"^python -m src\.data\.convert", _convert),  # before the training of what it converts
    (r"^python train\.py .*my_video", _train_converted),
    (r"^python eval\.py .*my_video", _evaluate_converted),
    (r"^python train\.py .*radar_gaps", _train_no_data),
    (r"^python eval\.py .*radar_gaps", _evaluate_no_data),
    (r"^python train\.py", _train_foreground),
    (r"run_standalone_train\.sh configs/cpu_small\.yaml CPU", _train_background),
    (r"^python export\.py", _export),
    (r"^python predict\.py", _predict),
    (r"run_eval\.sh configs/cpu_small\.yaml|^python eval\.py", _evaluate),
    (r"^python eval_onnx\.py|run_eval_onnx\.sh", _evaluate_onnx),  # the .onnx of the export commands
    (r"bash scripts/run_demo\.sh", _demo),
]


def RUNNERS_MATCH(command):  # noqa: N802 - reads as a predicate next to RUNNERS
    return any(re.search(p, command) for p, _ in RUNNERS)


def _shape(line):
    """A console line with its numbers and paths replaced, to compare formats, not values (runs of
    spaces collapsed: right-aligned columns pad a 2-digit number more than a 3-digit one)."""
    line = re.sub(r"(model|data)=\S+( \([^)]*\))?", r"\1=P", line.strip())
    return re.sub(r" +", " ", re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "N", line))


def readme_eval_excerpt():
    text = read(README)
    block = text.split("## Evaluation result", 1)[1].split("```log", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and line.strip() != "..."]


@pytest.mark.slow
def test_evaluation_result_excerpt_is_what_eval_prints(tmp_path):
    """Every line of the README's evaluation log excerpt has the format of a line eval.py prints
    today (numbers and paths aside), on a tiny untrained checkpoint scored like the excerpt."""
    from tests.exported_models import save_tiny_checkpoint, tiny_config

    ckpt = save_tiny_checkpoint(tmp_path / "tiny.ckpt", tiny_config(tmp_path / "run"))
    proc = subprocess.run([sys.executable, os.path.join(REPO, "eval.py"), "--ckpt_file", ckpt, "--dataset",
                           "synthetic", "--num_sequences", "4", "--output_dir", str(tmp_path / "eval")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    printed = {_shape(line) for line in (proc.stdout + proc.stderr).splitlines()}
    excerpt = readme_eval_excerpt()
    assert len(excerpt) >= 6
    missing = [line for line in excerpt if _shape(line) not in printed]
    assert not missing, f"README excerpt lines eval.py no longer prints: {missing}\nprinted:\n{proc.stdout}"


# ---------------------------------------------------------------------------------------------
# links, anchors, and the two READMEs side by side

def _outside_code(text):
    return re.sub(r"```.*?```", "", text, flags=re.S)


def heading_anchors(path):
    """GitHub's anchors of a markdown file's headings: lower case, punctuation dropped (full-width
    punctuation too), spaces to hyphens; a repeated heading gets -1, -2, ..."""
    anchors, seen = set(), {}
    for line in _outside_code(read(path)).splitlines():
        match = re.match(r"#+ (.*)", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def relative_links(path):
    """(target, fragment) of every markdown link of ``path`` that is not a web address."""
    links = re.findall(r"\]\(([^)\s]+)\)", _outside_code(read(path)))
    return [tuple((link.split("#", 1) + [""])[:2]) for link in links if not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("readme", [README, README_CN], ids=["README.md", "README_CN.md"])
def test_readme_links_to_docs_and_bench_point_to_existing_files(readme):
    links = [(target, fragment) for target, fragment in relative_links(readme)
             if target.startswith(("docs/", "bench/"))]
    assert any(target.startswith("docs/") for target, _ in links)
    for target, fragment in links:
        path = os.path.join(REPO, target)
        assert os.path.isfile(path), f"{os.path.basename(readme)} links to a missing file: {target}"
        if fragment:
            assert fragment in heading_anchors(path), f"{os.path.basename(readme)}: no heading #{fragment} in {target}"


@pytest.mark.parametrize("page", [README, README_CN] + DOC_FILES[1:], ids=os.path.basename)
def test_every_relative_link_and_anchor_resolves(page):
    """The Contents list and every other in-page or relative link (docs/ pages link back with ../)."""
    for target, fragment in relative_links(page):
        path = os.path.normpath(os.path.join(os.path.dirname(page), target)) if target else page
        assert os.path.exists(path), f"{os.path.relpath(page, REPO)} links to a missing file: {target}"
        if fragment:
            assert fragment in heading_anchors(path), f"{os.path.relpath(page, REPO)}: no heading #{fragment} in {target or 'itself'}"


def test_every_docs_page_is_linked_from_both_readmes():
    for readme in (README, README_CN):
        linked = {target for target, _ in relative_links(readme)}
        missing = [os.path.relpath(p, REPO) for p in DOC_FILES[1:] if os.path.relpath(p, REPO) not in linked]
        assert not missing, f"{os.path.basename(readme)} does not link {missing}"


def _heading_levels(path):
    return [re.match(r"#+", line).group(0) for line in _outside_code(read(path)).splitlines() if line.startswith("#")]


def _table_shapes(path):
    return [line.count("|") for line in read(path).splitlines() if line.lstrip().startswith("|")]


def test_chinese_readme_has_the_same_commands_sections_and_tables():
    assert readme_commands([README_CN]) == readme_commands([README])
    assert _heading_levels(README_CN) == _heading_levels(README)
    assert _table_shapes(README_CN) == _table_shapes(README)
