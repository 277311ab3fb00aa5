"""Logging of the commands that log (`run`, `serve`, `alerts send`): one line a record, on
standard error, at the level of the settings.

In: the level name. Out: the root logger set up; the libraries that chatter at INFO held to
WARNING. Kept apart so that the commands that do not log do not import `logging`.
"""

from __future__ import annotations

import logging
import re
import sys


class OneLineFormatter(logging.Formatter):
    """Log records as one line each, whatever they quote: control characters (CR, LF, ESC ...,
    and the Unicode line separators) in a message are written as escapes (``\\r``, ``\\n``), so
    a feed URL, a feed name or a requested path cannot split a line or forge the next one.
    A traceback still follows on lines of its own."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return _CONTROL_CHARACTERS.sub(_escaped, super().formatMessage(record))


_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]  # "\r", "\x1b", "\u2028"


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
    for noisy in ("httpx", "httpcore", "apscheduler", "trafilatura", "htmldate", "courlan",
                  "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
