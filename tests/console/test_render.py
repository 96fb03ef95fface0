"""The renderer alone: constructed replies in, text out, with and without colour."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from switch.console.render import clean, render_counts, render_json, render_reply
from switch.console.state import Counts, First
from switch.contract.messages import Leg, Reply
from tests.console.helpers import eim_reply, qim_reply, strip_ansi, switch_reject


def test_plain_rendering_has_header_operator_lines_and_legs() -> None:
    text = render_reply(eim_reply())
    lines = text.splitlines()
    assert lines[0] == ("2025-01-10 15:40:12.345Z COMPLETE EIM ORI/IL0160000 mid/eim-1 cid/c-eim-1")
    assert lines[1].startswith("  LEADS ACKNOWLEDGMENT EIM ORI/IL0160000 LNO/X17A4394")
    assert lines[2].startswith("  NCIC  ACKNOWLEDGMENT EIM")
    assert lines[3].split() == ["LEADS", "ACK", "-", "IMN/I000012345", "12.3", "ms"]
    assert lines[4].split() == ["NCIC", "ACK", "-", "IMN/I000012345", "15.0", "ms"]
    assert "\x1b" not in text


def test_colour_paints_statuses_and_changes_nothing_else() -> None:
    reply = eim_reply(status="PENDING", ncic="QUEUED")
    coloured = render_reply(reply, color=True)
    assert "\x1b[1;36mPENDING " in coloured  # bold cyan status in the header
    assert "\x1b[32mACK" in coloured and "\x1b[36mQUEUED" in coloured
    assert strip_ansi(coloured) == render_reply(reply, color=False)


def test_reject_codes_show_in_the_leg_rows() -> None:
    reply = Reply(mid="m", cid="c", mke="MII", ori="IL0160000", status="REJECTED",
                  legs={"LEADS": Leg(status="REJECT", code="NOT_ON_FILE", ms=2.0, text="LEADS REJECT")})
    row = render_reply(reply).splitlines()[-1]
    assert row.split() == ["LEADS", "REJECT", "NOT_ON_FILE", "-", "2.0", "ms"]
    assert "\x1b[31mREJECT" in render_reply(reply, color=True)


def test_supplement_names_the_reply_it_completes() -> None:
    sup = eim_reply(supplement=True)
    text = render_reply(sup, first=First(mid="eim-1", status="PENDING"))
    assert text.splitlines()[0].endswith("SUPPLEMENT")
    assert text.splitlines()[1] == "  SUPPLEMENT to eim-1 (cid c-eim-1) - was PENDING, now COMPLETE"
    unseen = render_reply(sup, first=None)
    assert "SUPPLEMENT to eim-1 (cid c-eim-1) - first reply not seen, now COMPLETE" in unseen


def test_duplicate_is_marked() -> None:
    assert render_reply(eim_reply(duplicate=True)).splitlines()[0].endswith("DUPLICATE")


def test_images_are_listed_with_renewal_and_where_saved() -> None:
    reply = qim_reply()
    text = render_reply(reply, saved={("LEADS", "X17A4394M0"): Path("/tmp/x/X17A4394M0-LEADS.jpg")})
    row = text.splitlines()[-1]
    assert row.strip().startswith("image LEADS IMN/X17A4394M0 IMT/M DOI/20230216 MIS/ANNUAL RENEWAL DUE")
    assert row.endswith("saved /tmp/x/X17A4394M0-LEADS.jpg")
    skipped = text.splitlines()[-2]
    assert skipped.split() == ["NCIC", "SKIPPED", "-", "-"]


def test_empty_text_is_rebuilt_from_errors_and_legs() -> None:
    lines = render_reply(switch_reject()).splitlines()
    assert lines[1] == "  SWITCH REJECT MKE/EIM INVALID DOI: 20231345 IS NOT A DATE"
    assert lines[2] == "  LEADS NOT SENT - REJECTED BY THE SWITCH"


def test_control_characters_from_the_wire_never_reach_the_terminal() -> None:
    reply = Reply(mid="m\x1b]0;owned\x07", cid="c", mke="EIM", ori="IL0160000", status="REJECTED",
                  text="SWITCH ECHO {\"mis\": \"\x1b[2J\r\x00\x9b\"}")
    text = render_reply(reply)
    assert not any(ch in text for ch in "\x1b\x07\r\x00\x9b")
    assert "mid/m?]0;owned?" in text
    assert clean("a\tb\x7f") == "a?b?"


def test_json_is_one_line_of_the_contract_form() -> None:
    for reply in (eim_reply(), qim_reply(), switch_reject()):
        line = render_json(reply)
        assert "\n" not in line
        data = json.loads(line)
        assert data["cid"] == reply.cid
        assert msgspec.json.decode(line, type=Reply) == reply
    data = json.loads(render_json(qim_reply(image=b"\x00\x01")))
    assert data["images"][0]["image"] == "AAE="  # base64, as on the wire


def test_counts_footer() -> None:
    counts = Counts(read=7)
    for reply in (eim_reply(), eim_reply(supplement=True), switch_reject()):
        counts.count_shown(reply)
    assert render_counts(counts) == (
        "switch console: 3 shown of 7 read (COMPLETE 2, PARTIAL 0, PENDING 0, REJECTED 1); "
        "supplements 1, duplicates 0, unreadable 0, images saved 0"
    )
