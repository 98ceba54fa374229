"""Logging what failed unexpectedly without what it said."""

from __future__ import annotations

import logging
import traceback


def log_unexpected(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """Log an exception's type and where it came through (file, line, function), never its
    text: a library's or the database's message can quote a URL with its key, a header, or
    captured data."""
    frames = "\n".join(
        f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}'
        for frame in traceback.extract_tb(exc.__traceback__)
    )
    logger.error("%s: %s\n%s", what, type(exc).__name__, frames)
