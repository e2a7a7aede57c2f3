"""A ``data_path`` ending in ``.zip`` (OpenI jobs receive a ``data.zip``) is unpacked once into
``<output_dir>/data_cache/<zip stem>-<fingerprint>/``. The fingerprint hashes the member table (names,
sizes, CRC-32s), so a re-downloaded identical zip reuses the folder without reading a member. Names
(zip-slip) and layout are checked before anything is written; extraction goes to a temporary folder,
gets a completion marker last and is renamed into place atomically (the first of racing ranks wins).
"""
import hashlib
import os
import re
import shutil
import tempfile
import zipfile
import zlib

from src.errors import DataError, UserError
from src.io import publish_directory

CACHE_DIR = "data_cache"  # under output_dir
_TMP_MARK = ".unpacking-"
DONE_MARK = ".complete"  # written last into a finished extraction
_IGNORED_TOP = ("__MACOSX",)  # resource-fork folder that macOS adds to zips it creates
_REMOTE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SHOWN_NAMES = 5  # member names quoted in a wrong-layout error
_reported = set()  # cache folders this process has already named


def is_remote_url(path):
    """True for ``obs://...``, ``s3://...`` and other ``scheme://`` locations (not local paths)."""
    return bool(_REMOTE_URL.match(str(path)))


def unpacked_data_path(cfg, wanted):
    """``cfg.data_path``, or for a ``.zip`` the unpacked folder holding ``wanted``: groups of alternative
    file names, each group present (e.g. ``[("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")]``)."""
    path = cfg.data_path
    if is_remote_url(path):
        raise DataError(f"data_path {path} is a remote URL; only train.py and eval.py copy remote data in (with "
                        "moxing); copy it to a local folder and pass that folder")
    if not str(path).lower().endswith(".zip") or os.path.isdir(path):
        return path
    return unpack_archive(path, os.path.join(cfg.output_dir, CACHE_DIR), wanted)


def unpack_archive(zip_path, cache_root, wanted):
    """Unpack ``zip_path`` into ``cache_root`` once; return the folder holding the ``wanted`` files."""
    infos = _read_member_table(zip_path)
    folder = _data_folder(zip_path, infos, wanted)
    digest = hashlib.sha1()
    for info in sorted(infos, key=lambda i: i.filename):
        digest.update(f"{info.filename}\0{info.file_size}\0{info.CRC}\n".encode("utf-8", "surrogateescape"))
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(zip_path)[:-len(".zip")]) or "data"
    final = os.path.join(os.path.abspath(cache_root), f"{stem}-{digest.hexdigest()[:12]}")
    data_dir = os.path.join(final, *folder.split("/")) if folder else final
    if not _is_complete(final):
        _extract_atomically(zip_path, infos, final)
    elif final not in _reported:  # the train and val splits both ask: say it once
        print(f"data: {zip_path} already unpacked in {final}", flush=True)
    _reported.add(final)
    return data_dir


def _read_member_table(zip_path):
    if not os.path.isfile(zip_path):
        raise DataError(f"data_path {zip_path} does not exist; point it at the .zip (or at the folder holding the "
                        "data files)")
    try:
        with zipfile.ZipFile(zip_path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as err:
        raise DataError(f"data_path {zip_path} is not a readable zip archive ({_one_line(err)}; truncated "
                        "download?); fetch the zip again or pass the unpacked folder") from None
    if not infos:
        raise DataError(f"data_path {zip_path} is an empty zip archive; expected the data files in it")
    for info in infos:  # zip-slip: a member /etc/x, C:\\x or a/../../x would land outside the folder
        name = info.filename
        parts = re.split(r"[\\/]", name)
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            raise DataError(f"data_path {zip_path}: member {name!r} is an absolute path or climbs out with '..'; "
                            "refusing to unpack it (it would be written outside the unpack folder); rebuild the "
                            "zip with relative member names")
    return infos


def _data_folder(zip_path, infos, wanted):
    """The folder inside the zip ("" = root, or one top folder) that holds every ``wanted`` group."""
    files = [i.filename for i in infos if not i.is_dir() and i.filename.split("/", 1)[0] not in _IGNORED_TOP]

    def holds_all(folder):
        prefix = f"{folder}/" if folder else ""
        names = {n[len(prefix):] for n in files if n.startswith(prefix) and "/" not in n[len(prefix):]}
        return all(any(name in names for name in group) for group in wanted)

    tops = sorted({n.split("/", 1)[0] for n in files if "/" in n})
    matches = [""] if holds_all("") else [top for top in tops if holds_all(top)]
    if len(matches) == 1:
        return matches[0]
    expected = " and ".join(" (or ".join(group) + ")" * (len(group) > 1) for group in wanted)
    if matches:
        raise DataError(f"data_path {zip_path}: {expected} found in several top folders "
                        f"({', '.join(m + '/' for m in matches)}); keep one of them in the zip")
    shown = ", ".join(files[:_SHOWN_NAMES]) + (f", ... ({len(files)} files)" if len(files) > _SHOWN_NAMES else "")
    raise DataError(f"data_path {zip_path}: expected {expected} at the zip root or under one top folder such "
                    f"as data/; the zip holds: {shown or 'only folders'}")


def _is_complete(final):
    return os.path.isfile(os.path.join(final, DONE_MARK))


def _extract_atomically(zip_path, infos, final):
    cache_root = os.path.dirname(final)
    os.makedirs(cache_root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=_TMP_MARK, dir=cache_root)
    total_mb = sum(i.file_size for i in infos) / 1e6
    print(f"data: unpacking {zip_path} ({total_mb:.1f} MB) into {final} (once; later runs reuse it)", flush=True)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for info in archive.infolist():  # names already checked
                _extract_member(zip_path, archive, info, tmp)
        open(os.path.join(tmp, DONE_MARK), "w").close()
        _publish(tmp, final)
    except zipfile.BadZipFile as err:
        raise DataError(f"data_path {zip_path} is not a readable zip archive ({_one_line(err)}); "
                        "fetch the zip again or pass the unpacked folder") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extract_member(zip_path, archive, info, folder):
    try:
        archive.extract(info, folder)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise DataError(f"data_path {zip_path}: member {info.filename} is corrupt ({_one_line(err)}); fetch the "
                        "zip again") from None
    except (NotImplementedError, RuntimeError) as err:  # unknown compression method, encrypted member
        raise DataError(f"data_path {zip_path}: member {info.filename} cannot be unpacked ({_one_line(err)}); "
                        "rebuild the zip without a password, with deflate or no compression") from None
    except OSError as err:
        raise UserError(f"could not write {info.filename} into {folder} while unpacking {zip_path} "
                        f"({err.strerror or err}); free disk space (or fix permissions) in output_dir, or unpack the "
                        "zip yourself and pass the folder as data_path") from None


def _publish(tmp, final):
    """Rename the finished extraction to ``final``; if another process got there first, keep its copy."""
    try:
        publish_directory(tmp, final)
    except OSError as err:
        if not _is_complete(final):
            raise UserError(f"could not move the unpacked data to {final} ({err.strerror or err}); delete {final} "
                            "if it is left from an older run, or fix the permissions of output_dir") from None


def _one_line(err):
    return " ".join(str(err).split()) or type(err).__name__
