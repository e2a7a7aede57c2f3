"""Remote (``scheme://``) data_path / output_dir (``--data_url`` / ``--train_url`` of ModelArts, OpenI):
the job runs on per-process local copies made with moxing. A copied folder holding one ``.zip`` (OpenI)
becomes that zip; output_dir is copied in when it exists (``--resume auto``) and the files the run
created or changed, except ``data_cache/``, are copied back, also after a failure; deleted files stay."""
import contextlib
import hashlib
import os
import shutil
import tempfile

from src.cli import CLI_ALIASES, argv_items
from src.data.archive import CACHE_DIR, is_remote_url
from src.errors import ConfigError, UserError

CLOUD_DISK = "/cache"
STAGING_DIR = "convlstm-staging"
ALIASES = {key: f"--{alias}" for alias, key in CLI_ALIASES.items()}  # data_path -> --data_url


def local_root():
    """``/cache/convlstm-staging`` if /cache (the job's local disk) is writable, else in the temp folder."""
    if os.path.isdir(CLOUD_DISK) and os.access(CLOUD_DISK, os.W_OK):
        return os.path.join(CLOUD_DISK, STAGING_DIR)
    return os.path.join(tempfile.gettempdir(), STAGING_DIR)


def import_moxing(remote_keys, cfg):
    """The moxing module, or one ConfigError line naming the remote keys."""
    try:
        import moxing  # pylint: disable=import-outside-toplevel
    except ImportError:
        what = " and ".join(f"{key} {getattr(cfg, key)} (--{key} / {ALIASES[key]})" for key in remote_keys)
        raise ConfigError(f"{what}: remote URLs are copied with the moxing package of ModelArts/OpenI images, "
                          "which is not installed here; run the job on ModelArts/OpenI or pass a local path") from None
    return moxing


@contextlib.contextmanager
def local_copies(cfg, root=None):
    """Yield ``cfg`` with remote ``data_path`` / ``output_dir`` replaced by local copies."""
    remote_keys = [key for key in ("data_path", "output_dir") if is_remote_url(getattr(cfg, key))]
    if not remote_keys:
        yield cfg
        return
    mox = import_moxing(remote_keys, cfg)
    root = os.path.abspath(root or local_root())
    changes, data_copy, output = {}, None, None
    try:
        if "data_path" in remote_keys:
            data_copy = _fresh_folder(root, "data", cfg.data_path)
            changes["data_path"] = copy_in_data(mox, cfg.data_path, data_copy)
        if "output_dir" in remote_keys:
            output = LocalOutput(mox, cfg.output_dir, _fresh_folder(root, "output", cfg.output_dir))
            changes["output_dir"] = output.local
        local_cfg = cfg.replace(**changes)
        try:
            yield local_cfg
        except BaseException:
            if output is not None and output.copy_back(after_failure=True):
                output.remove_local()
            raise
        if output is not None:
            output.copy_back()
            output.remove_local()
    finally:
        if data_copy is not None:
            shutil.rmtree(data_copy, ignore_errors=True)


def local_argv(argv, cfg, local_cfg):
    """``argv`` with the copied keys pointing at their local copies (train.py's resume reads it again)."""
    copied = [key for key in ("data_path", "output_dir") if getattr(local_cfg, key) != getattr(cfg, key)]
    drop = set(copied) | {alias for alias, key in CLI_ALIASES.items() if key in copied}
    kept = [token for name, _, tokens in argv_items(argv) if name not in drop for token in tokens]
    for key in copied:
        kept += [f"--{key}", getattr(local_cfg, key)]
    return kept


def _fresh_folder(root, kind, url):
    """An empty folder of this process for the copy of ``url``."""
    tag = hashlib.sha1(url.encode("utf-8")).hexdigest()[:8]
    folder = os.path.join(root, f"{kind}-{tag}-{os.getpid()}")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    return folder


def _mox_call(what, fn, *args):
    """Run a moxing call; any failure becomes one UserError line."""
    try:
        return fn(*args)
    except Exception as err:  # moxing raises its own exception types (OBS client errors)
        detail = " ".join(str(err).split()) or type(err).__name__
        raise UserError(f"{what} failed ({type(err).__name__}: {detail}); check the URL and the job's OBS "
                        "permissions") from None


def copy_in_data(mox, url, folder):
    """Copy the remote data ``url`` into ``folder``; return the local ``data_path``."""
    checking = f"checking data_path {url} with moxing"
    if not _mox_call(checking, mox.file.exists, url):
        raise ConfigError(f"data_path {url} (--data_path / --data_url) does not exist on the remote storage")
    print(f"data: copying {url} to {folder}", flush=True)
    if _mox_call(checking, mox.file.is_directory, url):
        _mox_call(f"copying {url} to {folder}", mox.file.copy_parallel, url, folder)
        names = os.listdir(folder)
        if len(names) == 1 and names[0].lower().endswith(".zip"):
            return os.path.join(folder, names[0])  # OpenI: the dataset folder holds the uploaded zip
        return folder
    local = os.path.join(folder, url.rstrip("/").rsplit("/", 1)[-1])
    _mox_call(f"copying {url} to {local}", mox.file.copy, url, local)
    return local


def _file_states(folder):
    """relative path -> (size, mtime_ns) of every file under ``folder``, without the unpacked-zip cache."""
    states = {}
    for current, dirs, names in os.walk(folder):
        if current == folder and CACHE_DIR in dirs:
            dirs.remove(CACHE_DIR)
        for name in names:
            path = os.path.join(current, name)
            stat = os.stat(path)
            states[os.path.relpath(path, folder)] = (stat.st_size, stat.st_mtime_ns)
    return states


class LocalOutput:
    """A remote output_dir copied into ``local``; :meth:`copy_back` uploads what the run wrote."""

    def __init__(self, mox, url, local):
        self.mox, self.url, self.local = mox, url.rstrip("/"), local
        if _mox_call(f"checking output_dir {url} with moxing", mox.file.exists, url):
            _mox_call(f"copying {url} to {local}", mox.file.copy_parallel, url, local)
        self.before = _file_states(local)
        print(f"output: {url} is written in {local} and copied back after the run", flush=True)

    def copy_back(self, after_failure=False):
        """Upload the files created or changed since the copy-in; True when done. After a failure of
        the run a failed upload is only reported (False): the run's own error is the one to show."""
        now = _file_states(self.local)
        changed = sorted(path for path, state in now.items() if self.before.get(path) != state)
        if not changed:
            return True
        print(f"output: copying {len(changed)} file(s) from {self.local} to {self.url}", flush=True)
        try:
            for relative in changed:
                remote = f"{self.url}/{relative.replace(os.sep, '/')}"
                _mox_call(f"copying {relative} to {remote}", self.mox.file.copy,
                          os.path.join(self.local, relative), remote)
        except UserError as err:
            if not after_failure:
                raise UserError(f"{err}; the run's files are kept in {self.local}") from None
            print(f"warning: {err}; the run's files are kept in {self.local}", flush=True)
            return False
        self.before = _file_states(self.local)
        return True

    def remove_local(self):
        shutil.rmtree(self.local, ignore_errors=True)
