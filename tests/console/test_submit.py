"""`switch submit`: the request built from the command line, then sent to a running switch."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from switch.cli import ctl, submit
from switch.cli.exits import UsageError
from switch.cli.main import build_parser
from switch.client import new_mid
from switch.settings import Settings
from tests.flow.conftest import RunningSwitch, photo

TEXT = "EIM.IL0160000.LNO/X17A4394.IMT/M.DOI/20230216.MIS/ANNUAL PHOTO."


def cli_args(settings: Settings, command: str, *argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args([
        command, *argv, "--bootstrap-servers", settings.kafka.bootstrap_servers,
        "--topic-prefix", settings.topics.prefix, "--home", str(settings.home),
    ])


async def run_submit(settings: Settings, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = await submit.execute(cli_args(settings, "submit", *argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- building the request


def test_text_form_with_image_mid_and_term(tmp_path: Path) -> None:
    img = tmp_path / "p.jpg"
    img.write_bytes(b"\xff\xd8jpeg")
    d = submit.build_request(TEXT, image=img, mid="m-1", term="T42")
    assert d == {"mid": "m-1", "mke": "EIM", "ori": "IL0160000", "lno": "X17A4394", "imt": "M",
                 "doi": "20230216", "mis": "ANNUAL PHOTO", "term": "T42",
                 "image": base64.b64encode(b"\xff\xd8jpeg").decode()}
    assert submit.build_request("QIM.IL0160000.LNO/X17A4394.")["mid"].startswith("submit-")


def test_json_file_and_text_file(tmp_path: Path) -> None:
    jf = tmp_path / "req.json"
    jf.write_text(json.dumps({"mke": "XIM", "mid": "x-1", "ori": "IL0160000", "imn": "X17A4394M0",
                              "doc": "20240301"}))
    assert submit.build_request(str(jf))["mid"] == "x-1"
    assert submit.build_request(str(jf), mid="x-2", term="T1")["mid"] == "x-2"
    tf = tmp_path / "req.txt"
    tf.write_text("QIM.IL0160000.IMN/X17A4394M0.\n")
    assert submit.build_request(str(tf))["imn"] == "X17A4394M0"
    assert submit.build_request("-", stdin=io.StringIO("QIM.IL0160000.NIC/X000012345."))["nic"]


@pytest.mark.parametrize(
    ("source", "kw", "message"),
    [
        ("EIM.IL0160000.LNO/X17A4394", {}, "not the text form MKE.ORI.CODE/VALUE.: .*MUST END WITH"),
        ("EIM.IL0160000.FOO/1.", {}, "not the text form .*CANNOT READ"),
        ("missing.json", {}, "missing.json: no such file"),
        ("QIM.IL0160000.LNO/X17A4394.", {"image": Path("p.jpg")}, "--image .*cannot read it"),
        ("QIM.IL0160000.LNO/X17A4394.", {"mid": "bad mid!"}, "--mid 'bad mid!'"),
    ],
)
def test_bad_input_is_one_clear_line(source: str, kw: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        submit.build_request(source, **kw)  # type: ignore[arg-type]


def test_image_only_with_eim_or_mii(tmp_path: Path) -> None:
    img = tmp_path / "p.jpg"
    img.write_bytes(b"x")
    with pytest.raises(UsageError, match="--image goes with EIM or MII, not QIM"):
        submit.build_request("QIM.IL0160000.LNO/X17A4394.", image=img)


async def test_invalid_fields_exit_2_before_any_kafka(tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path, bootstrap_servers="127.0.0.1:1")
    status, out, err = await run_submit(settings, "EIM.IL0160000.LNO/X17A4394.IMT/Q.DOI/20231345.")
    assert status == 2 and out == ""
    assert err == ("switch submit: error: invalid request: REJECT MKE/EIM INVALID IMT: Q IS NOT M, S "
                   "OR I; REJECT MKE/EIM INVALID DOI: 20231345 IS NOT A DATE; REJECT MKE/EIM MISSING "
                   "IMAGE (--image FILE); --no-check sends it anyway\n")
    status, _, err = await run_submit(settings, "QIM.IL0160000.LNO/X17A4394.")
    assert status == 3 and "cannot reach Kafka at 127.0.0.1:1" in err


# --------------------------------------------------------------------------- against Kafka


@pytest.mark.kafka
async def test_no_switch_running_exits_3_saying_what_to_check(kafka_settings: Settings) -> None:
    status, _, err = await run_submit(kafka_settings, "QIM.IL0160000.LNO/X17A4394.", "--timeout", "1")
    assert status == 3
    assert "no reply for mid submit-" in err and "within 1 s: is `switch up` running" in err
    bare = kafka_settings.with_overrides(
        topics=replace(kafka_settings.topics, prefix=f"none{uuid.uuid4().hex[:8]}"))
    status, _, err = await run_submit(bare, "QIM.IL0160000.LNO/X17A4394.")
    assert status == 3 and "do not exist" in err


@pytest.mark.kafka
@pytest.mark.slow
async def test_submit_text_form_eim_and_follow_a_supplement(switch: RunningSwitch, tmp_path: Path) -> None:
    settings = switch.settings
    rec = switch.record("SOR")
    img = tmp_path / "photo.jpg"
    img.write_bytes(photo())
    status, out, err = await run_submit(
        settings, f"EIM.{rec.ori}.LNO/{rec.lno}.IMT/M.DOI/20250110.MIS/ANNUAL PHOTO.", "--image", str(img),
        "--term", "T42")
    assert status == 0, err
    lines = out.splitlines()
    assert " COMPLETE EIM " in lines[0]
    assert lines[1].startswith(f"  LEADS ACKNOWLEDGMENT EIM ORI/{rec.ori} LNO/{rec.lno} IMN/I")
    assert lines[2].startswith(f"  NCIC  ACKNOWLEDGMENT EIM ORI/{rec.ori} NIC/{rec.nic}")
    assert lines[3].split()[:2] == ["LEADS", "ACK"] and lines[3].endswith(" ms")
    imn = lines[3].split()[3].removeprefix("IMN/")

    # NCIC stops answering: the MII is queued (exit 1 without waiting) ...
    assert await ctl.execute(cli_args(settings, "ctl", "NCIC", "down_forward"),
                             out=io.StringIO(), err=io.StringIO()) == 0
    mid = new_mid("mii")

    async def bring_ncic_back() -> None:
        await switch.client.wait(mid, predicate=lambda r: not r.supplement, timeout=60)
        await ctl.execute(cli_args(settings, "ctl", "NCIC", "up"), out=io.StringIO(), err=io.StringIO())

    back = asyncio.create_task(bring_ncic_back())
    # ... and with --wait-supplement the command follows it to COMPLETE once NCIC returns.
    status, out, err = await run_submit(
        settings, f"MII.{rec.ori}.IMN/{imn}.MIS/NEW GLASSES.", "--mid", mid, "--wait-supplement",
        "--timeout", "30")
    await back
    assert status == 0, err
    assert " PENDING  MII " in out and "NCIC  QUEUED" in out
    assert f"SUPPLEMENT to {mid} (cid " in out and "was PENDING, now COMPLETE" in out
