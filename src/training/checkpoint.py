"""Moved to src/checkpoint.py (checkpoints are used by eval, export and predict, not only training)."""
from src.checkpoint import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
