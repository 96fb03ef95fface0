"""The router binds each request to the principal that wrote it (by topic) and refuses
an ORI that principal may not send for; the principal is in the audit entries."""

from __future__ import annotations

import asyncio
import os
import sys

import msgspec
import pytest

from switch.client import SwitchClient, new_mid
from switch.contract.messages import AuditEntry, Codes
from switch.kafka.clients import assign_whole_topic, make_consumer
from switch.router.partitioning import ori_partition
from switch.settings import Settings
from tests.flow.conftest import RunningSwitch
from tests.security.conftest import agency, need_secure

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

audit_decoder = msgspec.json.Decoder(AuditEntry)


async def _audit(settings: Settings, cids: set[str], timeout: float = 30.0,
                 also: tuple[str, str] | None = None) -> list[AuditEntry]:
    """The audit entries of `cids`, once the router's (and `also`: (component, cid)) are in."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    out: list[AuditEntry] = []
    try:
        await assign_whole_topic(consumer, settings.topics.audit, from_end=False)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for rs in batch.values():
                out += [e for e in (audit_decoder.decode(r.value) for r in rs if r.value)
                        if e.cid in cids]
            if {e.cid for e in out if e.component == "router"} >= cids and (
                    also is None or (also[0], also[1]) in {(e.component, e.cid) for e in out}):
                break
    finally:
        await consumer.stop()
    return out


def _other_key(ori: str, partitions: int) -> str:
    """A key Kafka puts on another partition than the ORI's: the request is forwarded."""
    return next(k for k in (f"key{i}" for i in range(100))
                if ori_partition(k, partitions) != ori_partition(ori, partitions))


async def test_an_agency_can_send_only_for_its_own_oris(switch: RunningSwitch) -> None:
    s = switch.settings
    mine, theirs = switch.record("SOR", 0), switch.record("VOAY", 0)
    assert mine.ori != theirs.ori
    chi = await agency(s, "CHI", [mine.ori])
    async with SwitchClient(chi) as client:
        assert client.requests_topic == s.topics.agency_requests("CHI")
        ok = await client.request({"mke": "QIM", "mid": new_mid(), "ori": mine.ori,
                                   "lno": mine.lno}, timeout=60)
        assert ok.status == "COMPLETE", ok
        refused = await client.request({"mke": "QIM", "mid": new_mid(), "ori": theirs.ori,
                                        "lno": theirs.lno}, timeout=30)
        assert refused.status == "REJECTED"
        assert [e.code for e in refused.errors] == [Codes.NOT_AUTHORIZED]
        assert f"ORI/{theirs.ori} IS NOT BOUND TO PRINCIPAL User:agency-CHI" in refused.errors[0].text
        # Keyed by something else: forwarded to requests.byori, the sender travels with it.
        mid = new_mid()
        await client.send({"mke": "QIM", "mid": mid, "ori": theirs.ori, "lno": theirs.lno},
                          key=_other_key(theirs.ori, s.topics.partitions))
        forwarded = (await client.wait(mid, timeout=30))[0]
        assert forwarded.status == "REJECTED" and forwarded.errors[0].code == Codes.NOT_AUTHORIZED
        mid2 = new_mid()
        await client.send({"mke": "QIM", "mid": mid2, "ori": mine.ori, "lno": mine.lno},
                          key=_other_key(mine.ori, s.topics.partitions))
        assert (await client.wait(mid2, timeout=30))[0].status == "COMPLETE"
        # An agency's replies go to its own topic only.
        bad = await client.request({"mke": "QIM", "mid": new_mid(), "ori": mine.ori,
                                    "lno": mine.lno, "reply_to": s.topics.replies}, timeout=30)
        assert bad.status == "REJECTED" and bad.errors[0].code == Codes.NOT_AUTHORIZED
        assert bad.errors[0].field == "reply_to"
    # A trusted principal on the public topic may send for any ORI.
    trusted = await switch.client.request({"mke": "QIM", "mid": new_mid(), "ori": theirs.ori,
                                           "lno": theirs.lno}, timeout=30)
    assert trusted.status == "COMPLETE"
    entries = await _audit(s, {ok.cid, refused.cid, trusted.cid}, also=("leads", ok.cid))
    by_cid = {(e.cid, e.event): e for e in entries if e.component == "router"}
    assert by_cid[(ok.cid, "routed")].principal == "User:agency-CHI"
    rejected = by_cid[(refused.cid, "rejected")]
    assert rejected.principal == "User:agency-CHI" and "NOT_AUTHORIZED" in (rejected.detail or "")
    assert by_cid[(trusted.cid, "routed")].principal == "trusted"
    leads = [e for e in entries if e.component == "leads" and e.cid == ok.cid]
    assert leads and all(e.principal == "User:agency-CHI" for e in leads)
    # The correlator's entry too: every audit entry of the transaction names its sender.
    entries = await _audit(s, {ok.cid, trusted.cid}, also=("correlator", ok.cid))
    replied = [e for e in entries if e.component == "correlator" and e.cid == ok.cid]
    assert replied and all(e.principal == "User:agency-CHI" for e in replied)


async def test_a_forged_principal_header_on_the_public_topic_is_ignored(
    switch: RunningSwitch,
) -> None:
    """Only switch components write requests.byori; on the public topic the header means
    nothing, and the request is judged as the trusted principal's."""
    s = switch.settings
    rec = switch.record("SOR", 1)
    await agency(s, "FORGE", ["IL0000000"])
    mid = new_mid()
    value = msgspec.json.encode({"mke": "QIM", "mid": mid, "ori": rec.ori, "lno": rec.lno})
    producer = switch.client._producer
    await (await producer.send(s.topics.requests, value,
                               key=_other_key(rec.ori, s.topics.partitions).encode(),
                               headers=[("switch-principal", b"FORGE")]))
    reply = (await switch.client.wait(mid, timeout=30))[0]
    assert reply.status == "COMPLETE"


async def _cli(*args: str, env_password: str | None = None) -> tuple[int, str, str]:
    """Run `switch ...` without blocking the event loop the switch fixture runs in."""
    env = dict(os.environ)
    if env_password is not None:
        env["KAFKA_SASL_PASSWORD"] = env_password
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switch.cli.main", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_agency_add_and_submit_from_the_command_line(switch: RunningSwitch) -> None:
    s = switch.settings
    need_secure(s)
    rec = switch.record("SOR", 2)
    common = ["--bootstrap-servers", s.kafka.bootstrap_servers, "--topic-prefix",
              s.topics.prefix, "--home", str(s.home)]
    code, out, err = await _cli("agency", "add", "CLI1", "--ori-list", rec.ori, *common)
    assert code == 0, err
    assert "KAFKA_SASL_USERNAME=agency-CLI1" in out
    code, out, err = await _cli("submit", "--agency", "CLI1", f"QIM.{rec.ori}.LNO/{rec.lno}.",
                                "--timeout", "60", *common)
    assert code == 0, out + err
    other = "IL9999999" if rec.ori != "IL9999999" else "IL8888888"
    code, out, err = await _cli("submit", "--agency", "CLI1", f"QIM.{other}.LNO/{rec.lno}.",
                                "--timeout", "60", *common)
    assert code != 0 and "NOT BOUND TO PRINCIPAL User:agency-CLI1" in out, out + err
    # The wrong password: one line, fast, saying what to do.
    code, out, err = await _cli("submit", "--agency", "CLI1", f"QIM.{rec.ori}.LNO/{rec.lno}.",
                                "--timeout", "60", *common, env_password="wrong")
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("switch submit: error: authentication failed for user agency-CLI1")
