"""Exit statuses and error lines shared by the operator commands (submit, console, ctl, report).

    0  done (submit: the reply is COMPLETE)
    1  submit: the reply came, but is not COMPLETE (PARTIAL, PENDING, REJECTED)
    2  usage or configuration error: bad arguments, an unreadable file, an invalid request
    3  nothing answered: Kafka unreachable, or no reply before the timeout
"""

from __future__ import annotations

import logging

from switch.errors import SwitchError
from switch.settings import Settings

OK = 0
NOT_COMPLETE = 1
USAGE = 2
NO_ANSWER = 3


class UsageError(SwitchError):
    """Bad input from the command line; the message is the one line shown on stderr."""


def quiet_kafka_logs() -> None:
    """aiokafka logs every failed connection attempt; these commands say it once, clearly."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def unreachable(settings: Settings, exc: BaseException) -> str:
    """One line for a broker that does not answer, naming where the address came from;
    for a connection failure, the diagnosis of switch/security/diagnose.py (TLS expected or
    not, wrong password, nothing listening), which names what to do."""
    from concurrent.futures import ThreadPoolExecutor

    from aiokafka.errors import KafkaError

    from switch.security.diagnose import explain

    if isinstance(exc, KafkaError):
        with ThreadPoolExecutor(1) as pool:  # callers may be inside an event loop
            line = pool.submit(explain, exc, settings.kafka).result()
        if line is not None and not line.startswith("nothing answers"):
            return line
    return (
        f"cannot reach Kafka at {settings.kafka.bootstrap_servers} ({type(exc).__name__}): "
        "is the broker running (`switch broker start` or `switch up`), and is "
        "KAFKA_BOOTSTRAP_SERVERS / --bootstrap-servers right?"
    )
