"""An existing topic whose settings differ from the switch's is refused at start-up with
one line that says which topic, which setting, what it is, what it should be and what
to do; `switch topics create --fix` sets it right."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from switch.cli.main import main
from switch.errors import ConfigError
from switch.kafka.topics import _describe, config_mismatches, ensure_topics, topic_specs
from switch.settings import Settings

pytestmark = pytest.mark.kafka


async def _set(settings: Settings, topic: str, **changes: str) -> None:
    """Change some of `topic`'s configs (AlterConfigs replaces the whole set of overrides:
    the spec's, with the changes)."""
    spec = next(s for s in topic_specs(settings) if s.name == topic)
    configs = {**spec.configs, **{k.replace("_", "."): v for k, v in changes.items()}}
    admin = AIOKafkaAdminClient(**settings.kafka.client_kwargs())
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)])
        for _ in range(100):  # the broker applies it asynchronously
            _, have = await _describe(admin, [topic])
            if all(have[topic].get(k) == v for k, v in configs.items()):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{topic}: {changes} not applied")
    finally:
        await admin.close()


def _cli(settings: Settings, *args: str) -> list[str]:
    return ["topics", *args, "--bootstrap-servers", settings.kafka.bootstrap_servers,
            "--topic-prefix", settings.topics.prefix, "--home", str(settings.home)]


async def test_a_responses_topic_with_another_retention_is_refused(kafka_settings: Settings) -> None:
    t = kafka_settings.topics
    await _set(kafka_settings, t.responses, retention_ms="3600000")
    with pytest.raises(ConfigError) as exc:
        await ensure_topics(kafka_settings)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg == (f"topic {t.responses} has retention.ms=3600000, should be 604800000: run "
                   "`switch topics create --fix` (or delete and recreate the topic)")


async def test_a_changelog_that_is_not_compacted_is_refused_then_fixed(
    kafka_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    t = kafka_settings.topics
    await _set(kafka_settings, t.correlator, cleanup_policy="delete")
    # The CLI (and so `switch up` / `switch run`) says it in one line, exit status 2.
    status = await _in_thread(main, _cli(kafka_settings, "create"))
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err == (f"switch topics: error: topic {t.correlator} has cleanup.policy=delete, "
                   "should be compact: run `switch topics create --fix` (or delete and recreate "
                   "the topic)")
    assert await _in_thread(main, _cli(kafka_settings, "create", "--fix")) == 0
    assert await ensure_topics(kafka_settings) == []  # checked: now as specified


async def _in_thread(fn, argv):  # type: ignore[no-untyped-def]
    """`main` runs its own event loop: give it a thread."""
    return await asyncio.to_thread(fn, argv)


def test_mismatches_are_named_one_per_setting() -> None:
    settings = Settings.from_env({})
    specs = [s for s in topic_specs(settings) if s.name == settings.topics.mids]
    have = dict(specs[0].configs, **{"cleanup.policy": "delete,compact"})  # same set
    assert config_mismatches(specs, {settings.topics.mids: 3}, {settings.topics.mids: have}) == []
    wrong = config_mismatches(specs, {settings.topics.mids: 1},
                              {settings.topics.mids: dict(have, **{"retention.ms": "1"})})
    assert len(wrong) == 2
    assert wrong[0].startswith("topic switch.mids has 1 partitions, should have 3")
    assert "retention.ms=1, should be 172800000" in wrong[1]
