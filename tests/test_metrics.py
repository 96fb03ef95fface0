"""The metrics module's pure helpers, the settings that turn metrics on, and the ports of
`switch up --instances N`'s children."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from switch.cli.common import settings_from_args
from switch.cli.main import build_parser
from switch.cli.up import metrics_note
from switch.correlator.pending import Counters
from switch.errors import ConfigError
from switch.metrics import (
    PENDING_COUNTERS,
    LagReporter,
    Metrics,
    counter_deltas,
    counter_values,
    instance_port,
    label,
    lag,
    reply_kind,
    serve,
)
from switch.settings import Settings
from switch.supervisor import child_envs, child_specs


def _settings(**env: str) -> Settings:
    return Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", **env}, home=Path("/tmp/x"))


def test_reply_kind_and_labels() -> None:
    assert reply_kind(False, False) == "first"
    assert reply_kind(True, False) == "supplement"
    assert reply_kind(False, True) == "duplicate"
    assert label("EIM") == "EIM" and label(None) == "unknown" and label("") == "unknown"


def test_counter_deltas_count_only_growth_and_start_again_after_a_reset() -> None:
    before = counter_values(Counters(late=2, orphans=5, replies=9))
    after = counter_values(Counters(late=3, orphans=5, replies=20, duplicate_answers=1))
    assert counter_deltas(before, after) == {"late": 1, "duplicate_answers": 1, "orphans": 0,
                                             "timeouts": 0}
    assert counter_deltas(after, counter_values(Counters(late=1))) == {
        "late": 1, "duplicate_answers": 0, "orphans": 0, "timeouts": 0}
    assert set(PENDING_COUNTERS) <= set(counter_values(Counters()))  # no field renamed away


def test_lag_is_never_negative_and_unknown_while_an_offset_is() -> None:
    assert lag(10, 4) == 6 and lag(4, 4) == 0 and lag(3, 4) == 0
    assert lag(None, 4) is None and lag(10, None) is None


def test_lag_reporter_drops_the_series_of_partitions_given_away() -> None:
    m = Metrics()
    r = LagReporter(m, "router", every_s=5.0)
    assert r.due(100.0) and not r.due(102.0) and r.due(105.0)
    r.report([("t", 0, 3), ("t", 1, 0)])
    assert m.registry.get_sample_value("switch_consumer_lag",
                                       {"component": "router", "topic": "t", "partition": "0"}) == 3
    r.report([("t", 1, 7)])
    assert m.registry.get_sample_value("switch_consumer_lag",
                                       {"component": "router", "topic": "t", "partition": "0"}) is None
    assert m.registry.get_sample_value("switch_consumer_lag",
                                       {"component": "router", "topic": "t", "partition": "1"}) == 7


def test_two_switches_in_one_process_have_registries_of_their_own() -> None:
    a, b = Metrics(), Metrics()
    a.rejects.labels("EIM", "INVALID_FIELD").inc()
    assert b.registry.get_sample_value("switch_rejects_total",
                                       {"mke": "EIM", "code": "INVALID_FIELD"}) is None


def test_every_metric_is_prefixed_and_served_on_loopback() -> None:
    m = Metrics()
    m.replies.labels("QIM", "COMPLETE", "first").inc()
    server = serve(m, 0)
    try:
        assert server.server_address[0] == "127.0.0.1"
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "switch_replies" in names and "switch_consumer_lag" in names
    assert all(n.startswith("switch_") for n in names), names
    # not reachable on another address of this host
    other = socket.gethostbyname(socket.gethostname())
    if other != "127.0.0.1" and not other.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((other, server.server_address[1]), timeout=1).close()


def test_metrics_port_setting_zero_or_unset_is_off() -> None:
    assert _settings().metrics_port is None
    assert _settings(SWITCH_METRICS_PORT="0").metrics_port is None
    s = _settings(SWITCH_METRICS_PORT="9464")
    assert s.metrics_port == 9464 and s.metrics_host == "127.0.0.1"
    assert _settings(SWITCH_METRICS_PORT="9464", SWITCH_METRICS_HOST="0.0.0.0").metrics_host == "0.0.0.0"
    flag = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "SWITCH_METRICS_PORT": "1"},
                             home=Path("/tmp/x"), metrics_port=9500)
    assert flag.metrics_port == 9500  # the flag wins
    with pytest.raises(ConfigError, match="SWITCH_METRICS_PORT"):
        _settings(SWITCH_METRICS_PORT="70000")
    with pytest.raises(ConfigError, match="SWITCH_METRICS_PORT"):
        _settings(SWITCH_METRICS_PORT="x")


def test_each_child_of_switch_up_instances_gets_base_plus_its_index() -> None:
    assert instance_port(None, 3) is None and instance_port(9464, 0) == 9464
    specs = child_specs(2)
    envs = child_envs(_settings(SWITCH_METRICS_PORT="9464"), specs, base={})
    ports = {s.label: int(e["SWITCH_METRICS_PORT"]) for s, e in zip(specs, envs, strict=True)}
    assert ports == {"leads.0": 9464, "ncic.0": 9465, "correlator.0": 9466, "router.0": 9467,
                     "correlator.1": 9468, "router.1": 9469, "leads.1": 9470, "ncic.1": 9471}
    off = child_envs(_settings(), specs, base={"SWITCH_METRICS_PORT": "9464"})
    assert {e["SWITCH_METRICS_PORT"] for e in off} == {"0"}  # off for the parent: off for all


@pytest.mark.parametrize("command", [["run", "router"], ["up"]])
def test_the_metrics_port_flag_wins_over_the_environment(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("SWITCH_METRICS_PORT", "9464")
    args = build_parser().parse_args([*command, "--home", "/tmp/x", "--metrics-port", "9500"])
    assert settings_from_args(args).metrics_port == 9500
    args = build_parser().parse_args([*command, "--home", "/tmp/x"])
    assert settings_from_args(args).metrics_port == 9464
    args = build_parser().parse_args([*command, "--home", "/tmp/x", "--metrics-port", "0"])
    assert settings_from_args(args).metrics_port is None


def test_the_ready_line_says_where_the_metrics_are() -> None:
    assert metrics_note(_settings(), None) == ""
    on = _settings(SWITCH_METRICS_PORT="9464")
    assert metrics_note(on, None) == "metrics on http://127.0.0.1:9464/metrics; "
    assert "to 9471" in metrics_note(on, 2)  # 8 children: 9464..9471
