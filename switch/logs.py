"""structlog, configured once: JSON lines when not on a terminal, readable on one.

Components bind `cid` and `mid` per message with structlog.contextvars.
"""

from __future__ import annotations

import logging
import sys

import structlog

_configured = False


def configure(level: str = "INFO", *, json: bool | None = None) -> None:
    global _configured
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if json else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=_StderrLogger,
        cache_logger_on_first_use=False,
    )
    _configured = True


class _StderrLogger:
    """Writes each line to the *current* sys.stderr (which tests and daemons may swap),
    and never lets a failed write take down the loop that logged."""

    def __init__(self, *args: object) -> None:
        pass

    def msg(self, message: str) -> None:
        try:
            print(message, file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def get_logger(component: str) -> structlog.typing.FilteringBoundLogger:
    if not _configured:
        configure()
    return structlog.get_logger(component=component)  # type: ignore[no-any-return]
