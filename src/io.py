"""Atomic file writes: into a temporary sibling, then ``os.replace`` (a directory: ``os.rename``), so a
reader or a crash sees the destination absent, old, or complete, never half written."""
import contextlib
import json
import os


def move_into_place(tmp, path):
    """Publish a complete temporary file (in ``path``'s directory) under its final name, atomically."""
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def atomic_path(path):
    """``with atomic_path(p) as tmp: write(tmp)``: on success ``tmp`` replaces ``p``, on error ``p`` is kept.
    ``tmp`` is per process, beside ``p`` (atomic rename), with its extension (else writers add one)."""
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{name}")
    try:
        yield tmp
        move_into_place(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def publish_directory(tmp, final):
    """Rename a finished directory atomically (POSIX); OSError if ``final`` exists and is not empty."""
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
