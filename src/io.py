"""The one way this project writes a file: into a temporary sibling, then ``os.replace``
(a finished directory: ``os.rename``, :func:`publish_directory`).

A reader (or a crash) never sees half a file: the destination is either absent, the old
version, or the complete new one. ``atomic_path`` is the primitive (the caller writes the
temporary file however it likes: numpy, PIL, MindSpore); the text/JSON helpers use it.
"""
import contextlib
import json
import os


def sibling_temp(path):
    """A temporary file name next to ``path`` (same directory, so the rename is atomic), unique
    per process, keeping ``path``'s extension (some writers append theirs otherwise)."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".tmp-{os.getpid()}-{name}")


def move_into_place(tmp, path):
    """Publish a complete temporary file written by the caller (same directory as ``path``, e.g.
    from :func:`sibling_temp`) under its final name, in one atomic step."""
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def atomic_path(path):
    """``with atomic_path(p) as tmp: write(tmp)``: on success ``tmp`` replaces ``p``; on any
    error ``tmp`` is removed and ``p`` is untouched."""
    tmp = sibling_temp(path)
    try:
        yield tmp
        move_into_place(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def publish_directory(tmp, final):
    """Rename a finished directory ``tmp`` to ``final`` in one atomic step (POSIX); raises OSError
    if ``final`` already exists and is not empty."""
    os.rename(tmp, final)
    return final


def write_text_atomic(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return path


def write_json_atomic(path, data):
    """``data`` as indented JSON with a final newline."""
    return write_text_atomic(path, json.dumps(data, indent=1) + "\n")
