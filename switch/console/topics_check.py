"""Is the switch's topic there? Asked before writing, because a broker that creates
topics on first use (`auto.create.topics.enable`, on in development brokers) would
otherwise make one with default settings: a control topic that is not compacted, a
requests topic too small for images. The topics are the switch's to create
(`switch up`, `switch topics create`), with the settings its README documents.
"""

from __future__ import annotations

from switch.kafka.clients import make_consumer
from switch.settings import Settings


async def missing_topics(settings: Settings, *topics: str) -> list[str]:
    """The names among `topics` that the cluster does not have. Raises KafkaError if unreachable."""
    consumer = make_consumer(settings, group_id=None)
    try:
        await consumer.start()
        existing = await consumer.topics()
    finally:
        await consumer.stop()
    return [t for t in topics if t not in existing]


def missing_message(settings: Settings, missing: list[str]) -> str:
    what = f"topic {missing[0]} does not" if len(missing) == 1 else f"topics {', '.join(missing)} do not"
    return (
        f"{what} exist on {settings.kafka.bootstrap_servers}: "
        f"is `switch up` running with topic prefix {settings.topics.prefix!r} "
        "(or create the topics with `switch topics create`)?"
    )
