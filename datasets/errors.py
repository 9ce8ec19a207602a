"""Errors raised by the dataset loaders.

Every error is a ``ValueError`` subclass with a one-line message that names the offending
file, directory or configuration key, so a failed run says exactly what to fix.
"""

from __future__ import annotations


class DataFileError(ValueError):
    """A dataset file or directory is missing, unreadable or not in the expected format."""


class DataSizeError(DataFileError):
    """The data is too small for the run: fewer samples than workers, a worker's shard smaller than
    one batch, or a partition that leaves a worker empty (the message names the key to change)."""
