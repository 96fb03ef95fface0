"""One exception root for the whole process (after aiokafka's errors.py).

Wire-level problems are not exceptions: they become reject codes in replies. These
are for the process itself: bad configuration, a broker that will not start.
"""

from __future__ import annotations


class SwitchError(Exception):
    """Root of every error the switch raises on purpose."""

    retriable: bool = False


class ConfigError(SwitchError):
    """Settings are missing or malformed; the message says which and how to fix it."""


class BrokerError(SwitchError):
    """The local Kafka broker could not be resolved, started, or reached."""

    retriable = True
