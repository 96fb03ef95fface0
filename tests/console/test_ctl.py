"""`switch ctl`: arguments checked before anything is sent; a decodable Control on the topic."""

from __future__ import annotations

import io
import uuid

import pytest

from switch.cli import ctl
from switch.cli.exits import UsageError
from switch.cli.main import build_parser
from switch.contract.messages import Control, Latency, control_decoder
from switch.kafka.clients import make_consumer
from switch.settings import Settings


def args_for(settings: Settings, *argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args([
        "ctl", *argv, "--bootstrap-servers", settings.kafka.bootstrap_servers,
        "--topic-prefix", settings.topics.prefix, "--home", str(settings.home),
    ])


def test_build_control_normalises_and_checks() -> None:
    assert ctl.build_control("ncic", "down-forward") == Control(system="NCIC", mode="down_forward")
    assert ctl.build_control("LEADS", p50=20, p99=200) == Control(
        system="LEADS", latency_ms=Latency(p50=20, p99=200))
    assert ctl.build_control("LEADS", "up", no_latency=True, reject_rate=0.05) == Control(
        system="LEADS", mode="up", latency_ms=Latency(p50=0, p99=0), reject_rate=0.05)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ctl.build_control("FBI", "up"), "SYSTEM 'FBI': expected one of LEADS, NCIC"),
        (lambda: ctl.build_control("NCIC", "off"), "MODE 'off': expected one of up, down_forward"),
        (lambda: ctl.build_control("NCIC"), "nothing to send"),
        (lambda: ctl.build_control("NCIC", p50=20), "--p50 and --p99 go together"),
        (lambda: ctl.build_control("NCIC", p50=200, p99=20), "--p99 20 is below --p50 200"),
        (lambda: ctl.build_control("NCIC", p50=-1, p99=20), "--p50 -1: milliseconds, 0 or more"),
        (lambda: ctl.build_control("NCIC", reject_rate=1.5), "--reject-rate 1.5: a share between 0 and 1"),
        (lambda: ctl.build_control("NCIC", p50=1, p99=2, no_latency=True), "--no-latency cannot go"),
    ],
)
def test_bad_arguments_are_named(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        call()


def test_unset_fields_are_left_out_of_the_json() -> None:
    raw = ctl.encode_control(Control(system="NCIC", mode="down_drop"))
    assert raw == b'{"system":"NCIC","mode":"down_drop"}'


@pytest.mark.kafka
async def test_ctl_publishes_a_decodable_control_keyed_by_system(kafka_settings: Settings) -> None:
    out, err = io.StringIO(), io.StringIO()
    status = await ctl.execute(args_for(kafka_settings, "NCIC", "down_forward", "--p50", "20",
                                        "--p99", "200"), out=out, err=err)
    assert status == 0, err.getvalue()
    assert out.getvalue().startswith(
        "switch ctl: NCIC: mode down_forward, latency p50 20 ms p99 200 ms; sent to "
        f"{kafka_settings.topics.control} key NCIC: ")
    consumer = make_consumer(kafka_settings, kafka_settings.topics.control, group_id=None)
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
        records = [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    assert len(records) == 1
    assert records[0].key == b"NCIC"
    assert control_decoder.decode(records[0].value) == Control(
        system="NCIC", mode="down_forward", latency_ms=Latency(p50=20, p99=200))


@pytest.mark.kafka
async def test_ctl_refuses_a_missing_control_topic(kafka_settings: Settings) -> None:
    from dataclasses import replace

    bare = kafka_settings.with_overrides(
        topics=replace(kafka_settings.topics, prefix=f"none{uuid.uuid4().hex[:8]}"))
    err = io.StringIO()
    status = await ctl.execute(args_for(bare, "NCIC", "up"), out=io.StringIO(), err=err)
    assert status == 3
    assert "does not exist" in err.getvalue() and "switch up" in err.getvalue()


async def test_ctl_says_when_kafka_is_unreachable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings.from_env({}, home=tmp_path, bootstrap_servers="127.0.0.1:1")
    err = io.StringIO()
    status = await ctl.execute(args_for(settings, "NCIC", "up"), out=io.StringIO(), err=err)
    assert status == 3
    assert err.getvalue().startswith("switch ctl: error: cannot reach Kafka at 127.0.0.1:1")
