"""User-facing errors: the CLI prints their message as one line and exits non-zero.

Raise these for anything a user can fix (bad config key, missing shard, wrong magic, vocab
mismatch, out of memory); let programming errors surface as ordinary tracebacks.
"""

from __future__ import annotations


class GolflabError(Exception):
    """An error whose message is complete and fit to show to a user as-is."""

    exit_code = 2


class ConfigError(GolflabError):
    """A config key, value or override is invalid; the message names its dotted path."""


class DataError(GolflabError):
    """A data file, shard, manifest or tokenizer is missing or malformed; the message names it."""


class TrainingError(GolflabError):
    """A run failed for a reason the user can act on (NaN loss, out of GPU memory, ...)."""

    exit_code = 3
