"""Access logs without secrets: API and kiosk tokens are redacted from every access-log line.

A wall may still open ``/kiosk?token=…`` (``POST /kiosk`` is the way that keeps the token out of
URLs), and access logs are read by many and kept for long. So werkzeug's request log (``python
app.py serve``) and gunicorn's access log get a filter that rewrites each line: the value of any
``…token=`` parameter, and anything shaped like a token (``gro_…``, also inside an encoded
``next=``), become ``[redacted]``.
"""
from __future__ import annotations

import logging
import re

from data_feeds.credentials import TOKEN_PREFIX

ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")
REDACTED = "[redacted]"
TOKEN_PARAMETER = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)
TOKEN_TEXT = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_\-]+")


def redact(text: str) -> str:
    """``text`` with token parameters and token-shaped words replaced by ``[redacted]``."""
    return TOKEN_TEXT.sub(TOKEN_PREFIX + REDACTED, TOKEN_PARAMETER.sub(r"\g<1>" + REDACTED, text))


class RedactTokens(logging.Filter):
    """Rewrites a record's message when it holds a token (the record is formatted once, here)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def install() -> None:
    """Add the filter to the access loggers, once however many apps a process builds (tests build many)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactTokens) for existing in logger.filters):
            logger.addFilter(RedactTokens())
