"""The console's one loop: read `switch.replies`, show what passes the filter.

No consumer group: the console assigns itself every partition of the replies topic
and starts at the end (or the beginning with `from_beginning`), so any number of
consoles can watch without taking replies from each other or committing anything.
It reads `read_committed`, so a reply of an aborted transaction never shows.

Everything it keeps is bounded (`FirstSeen` has a capacity, `Counts` is a few
integers, a fetch holds at most `MAX_RECORDS` replies), so a console can run for days.
`Console` does the per-reply work without Kafka, writing to the streams it is given;
`tail` feeds it and can be driven in-process by tests (`stop`, `max_count`, `ready`).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from switch.console.filters import ReplyFilter
from switch.console.images import save_images
from switch.console.render import render_counts, render_json, render_reply
from switch.console.state import DEFAULT_CAPACITY, Counts, FirstSeen
from switch.contract.messages import Reply, reply_decoder
from switch.kafka.clients import cluster_metadata, make_consumer
from switch.settings import Settings

MAX_RECORDS = 200  # per fetch: bounds what one poll holds, QIM images included
POLL_MS = 200  # how often a stop request is noticed
TOPIC_WAIT_S = 1.0


@dataclass(frozen=True, kw_only=True)
class TailOptions:
    filter: ReplyFilter = field(default_factory=ReplyFilter)
    from_beginning: bool = False
    json: bool = False
    color: bool = False
    save_images: Path | None = None
    footer_every: int = 100  # a count line on stderr every N shown replies; 0: only at the end
    remember: int = DEFAULT_CAPACITY  # transactions remembered for linking supplements


class Console:
    """Shows replies one at a time: filter, link supplements, save images, count. No Kafka."""

    def __init__(self, options: TailOptions, out: TextIO, err: TextIO) -> None:
        self.options = options
        self.out = out
        self.err = err
        self.counts = Counts()
        self.firsts = FirstSeen(options.remember)

    def handle_value(self, value: bytes | None, where: str = "") -> bool:
        """Decode and handle one record's value; True when a reply was shown."""
        try:
            if value is None:
                raise msgspec.DecodeError("no value")
            reply = reply_decoder.decode(value)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            self.counts.unreadable += 1
            self.err.write(f"switch console: skipped an unreadable reply{where}: {exc}\n")
            self.err.flush()
            return False
        return self.handle(reply)

    def handle(self, reply: Reply) -> bool:
        """Show `reply` if it passes the filter; True when it was shown."""
        self.counts.read += 1
        first = self.firsts.observe(reply)  # before filtering: a shown supplement needs it
        if not self.options.filter(reply):
            return False
        saved: dict[tuple[str, str], Path] = {}
        if self.options.save_images is not None and reply.images:
            saved = self._save(reply, self.options.save_images)
        self.counts.count_shown(reply)
        if self.options.json:
            text = render_json(reply)
        else:
            text = render_reply(reply, color=self.options.color, first=first, saved=saved)
        self.out.write(text + "\n")
        self.out.flush()
        every = self.options.footer_every
        if every > 0 and self.counts.shown % every == 0:
            self.write_footer()
        return True

    def _save(self, reply: Reply, directory: Path) -> dict[tuple[str, str], Path]:
        try:
            saved = save_images(reply, directory)
        except OSError as exc:
            self.err.write(f"switch console: cannot save images of {reply.mid} in {directory}: {exc}\n")
            self.err.flush()
            return {}
        self.counts.images_saved += len(saved)
        return saved

    def footer(self) -> str:
        return render_counts(self.counts)

    def write_footer(self) -> None:
        self.err.write(self.footer() + "\n")
        self.err.flush()


async def tail(
    settings: Settings,
    console: Console,
    *,
    stop: asyncio.Event | None = None,
    max_count: int | None = None,
    ready: asyncio.Event | None = None,
    topic: str | None = None,
) -> Counts:
    """Feed `console` until `stop` is set or it has shown `max_count` replies; return its counts.

    `ready` is set once the start positions are fixed: anything written after it is
    seen. The topic defaults to the configured replies topic; if it does not exist yet
    the console says so once and waits for it.
    """
    stop = stop or asyncio.Event()
    topic = topic or settings.replies_topic
    options = console.options
    consumer = make_consumer(settings, group_id=None)
    try:
        await consumer.start()
        tps = await _partitions(consumer, topic, stop, console.err)
        if not tps:
            return console.counts
        if settings.agency is None and topic == settings.topics.replies:
            tps += await agency_reply_partitions(consumer, settings)
        consumer.assign(tps)
        if options.from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve positions now, so `ready` means "nothing later is missed"
            await consumer.position(tp)
        if ready is not None:
            ready.set()
        follow = AgencyReplies(settings) if topic == settings.topics.replies else None
        while not stop.is_set():
            if follow is not None:
                await follow.refresh(consumer)
            batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
            for tp, records in batch.items():
                for rec in records:
                    where = f" at {tp.topic}[{tp.partition}]@{rec.offset}"
                    if console.handle_value(rec.value, where) and (
                        max_count is not None and console.counts.shown >= max_count
                    ):
                        return console.counts
    finally:
        await consumer.stop()
    return console.counts


AGENCY_TOPICS_EVERY_S = 5.0  # how soon a new agency's reply topic is followed


class AgencyReplies:
    """Keeps an operator's reader on every agency's reply topic, including agencies added
    after it started (checked every AGENCY_TOPICS_EVERY_S): a new topic is read from its
    beginning (all of it came after), the partitions already read keep their positions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._last = time.monotonic()

    async def refresh(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """Add the partitions of agency reply topics created since; returns them."""
        if self.settings.agency is not None or time.monotonic() - self._last < AGENCY_TOPICS_EVERY_S:
            return []
        self._last = time.monotonic()
        current = set(consumer.assignment())
        new = [tp for tp in await agency_reply_partitions(consumer, self.settings)
               if tp not in current]
        if not new:
            return []
        positions = {tp: await consumer.position(tp) for tp in current}
        consumer.assign([*current, *new])
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        await consumer.seek_to_beginning(*new)
        return new


async def agency_reply_partitions(
    consumer: AIOKafkaConsumer, settings: Settings
) -> list[TopicPartition]:
    """The partitions of every agency's own reply topic that exists now (an operator's
    console and web console also show those replies; `AgencyReplies` adds later ones); an
    agency's console is not authorized to see them and is never given them."""
    cluster = await cluster_metadata(consumer)
    pattern = re.compile(rf"{re.escape(settings.topics.prefix)}\.agency\.[A-Za-z0-9_-]+\.replies")
    return [TopicPartition(t, p) for t in sorted(cluster.topics()) if pattern.fullmatch(t)
            for p in sorted(cluster.partitions_for_topic(t) or ())]


async def _partitions(
    consumer: AIOKafkaConsumer, topic: str, stop: asyncio.Event, err: TextIO
) -> list[TopicPartition]:
    """Every partition of `topic`, waiting (until `stop`) for the topic to exist."""
    told = False
    while not stop.is_set():
        # A fresh metadata fetch: the consumer's own cache only follows topics it was
        # asked about, and this one has none until it assigns itself partitions.
        cluster = await cluster_metadata(consumer)
        parts = cluster.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        if not told:
            err.write(f"switch console: waiting for topic {topic} to exist (is `switch up` running?)\n")
            err.flush()
            told = True
        try:
            await asyncio.wait_for(stop.wait(), TOPIC_WAIT_S)
        except TimeoutError:
            pass
    return []
