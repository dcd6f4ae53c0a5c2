"""The library's own error types.

Every problem a user can fix (bad data, bad config, a checkpoint that does not fit) is raised as a
:class:`SkeletonMAEError`, whose message says what was wrong and how to fix it. The CLI prints these
without a traceback; anything else is a bug.
"""


class SkeletonMAEError(Exception):
    """Base class: a problem the user can fix, described in the message; the CLI exits with ``exit_code``."""

    exit_code = 2


class DataError(SkeletonMAEError, ValueError):
    """An annotation file or sample is unreadable or does not match what was expected."""


class ConfigError(SkeletonMAEError, ValueError):
    """A configuration key or value is unknown or invalid."""


class CheckpointError(SkeletonMAEError, ValueError):
    """A checkpoint is missing, unreadable, or does not fit the model it is loaded into."""


class Interrupted(SkeletonMAEError):
    """A run was stopped by a signal (SIGTERM from a scheduler); a resumable checkpoint was saved."""

    exit_code = 143  # 128 + SIGTERM, as a shell reports a process the signal ended
