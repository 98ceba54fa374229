"""The last line of defence for logs: mask secrets in every record the root handlers write.

Two nets: every secret a live redactor knows (the credentials of the calls running now, in
every spelling), and credential-shaped text (``key=…``, ``Authorization: …``, ``Bearer …``)
whoever wrote it, third-party libraries quoting a URL or a header included.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from typing import Protocol

MASK = "••••••"
_QUERY_SECRET = re.compile(
    r"(?i)((?:^|[?&;,\s(\"'])(?:api[_-]?key|apikey|key|token|access[_-]?token|refresh[_-]?token"
    r"|id[_-]?token|client[_-]?secret|secret|password|passwd|pwd|signature|sig"
    r"|x-amz-signature|x-amz-security-token|x-amz-credential|auth)=)[^&\s\"',;)]+"
)
_HEADER_SECRET = re.compile(
    r"(?i)((?:proxy-)?authorization|x-api-key|api-key|apikey|x-auth-token|cookie|set-cookie"
    r"|x-amz-security-token)([\"']?\s*[:=]\s*[\"']?)[^\r\n\"']+"
)
_SCHEME_SECRET = re.compile(r"(?i)\b(Bearer|Basic|Digest|AWS4-HMAC-SHA256)\s+[^\s\"',]{6,}")


class Masker(Protocol):
    def text(self, value: str) -> str:
        """Return value with the secrets it knows masked."""


_maskers: weakref.WeakSet = weakref.WeakSet()
_lock = threading.Lock()


def register(masker: Masker) -> None:
    """Mask what masker knows in every record for as long as masker lives."""
    with _lock:
        _maskers.add(masker)


def mask(text: str) -> str:
    """Return text with known secrets and credential-shaped values masked."""
    with _lock:
        maskers = list(_maskers)
    for masker in maskers:
        text = masker.text(text)
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, text)
    text = _HEADER_SECRET.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    return _SCHEME_SECRET.sub(lambda m: f"{m.group(1)} {MASK}", text)


class SecretsFilter(logging.Filter):
    """Rewrite a record's message, exception and stack text with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging itself reports those
            return True
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
            # Formatters would render exc_info again, from the unmasked exception.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True
