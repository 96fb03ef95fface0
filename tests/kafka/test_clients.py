"""Client plumbing without a broker: the start/stop lifecycle and the scoped back-off."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import aiokafka.producer.sender as aiokafka_sender
import pytest

from switch.kafka.clients import (
    CONCURRENT_TXN_RETRY_S,
    _AddPartitionsRetryingSoon,
    make_producer,
    running,
)
from switch.settings import Settings


class _Client:
    def __init__(self, name: str, log: list[str], *, fails: bool = False) -> None:
        self.name, self.log, self.fails = name, log, fails

    async def start(self) -> None:
        if self.fails:
            raise ConnectionError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_clients_start_in_order_and_stop_in_reverse() -> None:
    log: list[str] = []
    async with running(_Client("a", log), _Client("b", log)):
        log.append("work")
    assert log == ["start a", "start b", "work", "stop b", "stop a"]


async def test_a_failed_start_stops_every_client_started_or_not() -> None:
    log: list[str] = []
    with pytest.raises(ConnectionError):
        async with running(_Client("a", log), _Client("b", log, fails=True), _Client("c", log)):
            log.append("never")
    assert log == ["start a", "stop c", "stop b", "stop a"]


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, home=tmp_path, bootstrap_servers="localhost:1")


async def test_the_short_concurrent_transactions_back_off_is_the_stage_producers_own(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    transactional = make_producer(settings, transactional_id="tx-1")
    plain = make_producer(settings)
    try:
        assert aiokafka_sender.BACKOFF_OVERRIDE == 0.02  # the library is left as it is
        assert "_do_add_partitions_to_txn" in vars(transactional._sender)
        assert "_do_add_partitions_to_txn" not in vars(plain._sender)
    finally:
        await transactional.stop()
        await plain.stop()


def test_only_concurrent_transactions_before_any_partition_retry_sooner() -> None:
    concurrent = aiokafka_sender.Errors.ConcurrentTransactions.errno
    resp = SimpleNamespace(errors=[("t", [(0, concurrent)])])

    def handler(partitions: set[object]) -> _AddPartitionsRetryingSoon:
        txn = SimpleNamespace(txn_partitions=partitions, transactional_id="tx",
                              producer_id=1, producer_epoch=0)
        sender = SimpleNamespace(_txn_manager=txn, _retry_backoff=0.01)
        return _AddPartitionsRetryingSoon(sender, [])

    assert handler(set()).handle_response(resp) == CONCURRENT_TXN_RETRY_S
    assert handler({"t-0"}).handle_response(resp) == 0.01
