"""One rule per field code: valid and invalid examples (switch/contract/fields.py)."""

from __future__ import annotations

import datetime as dt
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.contract import fields as F

TODAY = dt.date(2025, 6, 30)


def luhn_valid(number: str) -> bool:
    """An independent Luhn validator over a digit string that ends in its check digit."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# --------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize("value", ["a", "A" * 64, "load-0001:42", "x.y_z", "0"])
def test_mid_valid(value: str) -> None:
    assert F.check_mid(value) is None


@pytest.mark.parametrize("value", ["", "A" * 65, "has space", "é", "a/b", "a\n"])
def test_mid_invalid(value: str) -> None:
    assert F.check_mid(value) is not None


@pytest.mark.parametrize("value", ["IL0160000", "ILABCDEFG", "NY1234567"])
def test_ori_valid(value: str) -> None:
    assert F.check_ori(value) is None


@pytest.mark.parametrize("value", ["IL016000", "IL01600000", "1L0160000", "il0160000", "IL016000a"])
def test_ori_invalid(value: str) -> None:
    reason = F.check_ori(value)
    assert reason is not None
    assert "STATE CODE" in reason


@pytest.mark.parametrize("value", ["X17A4394", "A00B0000"])
def test_lno_valid(value: str) -> None:
    assert F.check_lno(value) is None


@pytest.mark.parametrize("value", ["X17A439", "X17A43945", "117A4394", "X1AA4394", "x17a4394"])
def test_lno_invalid(value: str) -> None:
    assert F.check_lno(value) is not None


@pytest.mark.parametrize("value", ["M", "S", "I"])
def test_imt_valid(value: str) -> None:
    assert F.check_imt(value) is None


@pytest.mark.parametrize("value", ["", "m", "P", "MS"])
def test_imt_invalid(value: str) -> None:
    assert F.check_imt(value) == f"{value} IS NOT M, S OR I"


@pytest.mark.parametrize(
    ("imn", "kind"),
    [
        ("X17A4394M0", "VOAY"),
        ("X17A4394S9", "VOAY"),
        ("X17A4394I3", "VOAY"),
        ("I000012345", "SHARED"),
        ("I999999999", "SHARED"),
        ("X17A4394P0", None),
        ("X17A4394M", None),
        ("I00001234", None),
        ("J000012345", None),
        ("i000012345", None),
        ("", None),
    ],
)
def test_imn_kind_and_check(imn: str, kind: str | None) -> None:
    assert F.imn_kind(imn) == kind
    assert (F.check_imn(imn) is None) == (kind is not None)


@pytest.mark.parametrize("value", ["M", "F", "U"])
def test_sex_valid(value: str) -> None:
    assert F.check_sex(value) is None


@pytest.mark.parametrize("value", ["", "m", "X", "MF"])
def test_sex_invalid(value: str) -> None:
    assert F.check_sex(value) is not None


def test_term() -> None:
    assert F.check_term("") is None
    assert F.check_term("T" * 32) is None
    assert F.check_term("T" * 33) == "33 CHARACTERS, AT MOST 32"
    assert F.check_term("T\t1") is not None


def test_reply_to() -> None:
    assert F.check_reply_to("switch.replies") is None
    assert F.check_reply_to("switch.replies.console-7") is None
    assert F.check_reply_to("other.replies") == "other.replies IS NOT UNDER switch.replies"
    assert F.check_reply_to("switch.replies x") == "switch.replies x IS NOT A TOPIC NAME"
    assert F.check_reply_to("t7.replies.a", "t7.replies") is None
    assert F.check_reply_to("switch.replies", "t7.replies") is not None


# --------------------------------------------------------------------------- NIC


def test_nic_check_digit_worked_example() -> None:
    # 8 7 6 5 4 3 2 1 from the right; 8, 6, 4, 2 doubled: 16->7, 12->3, 8, 4.
    # 7 + 7 + 3 + 5 + 8 + 3 + 4 + 1 = 38, so the check digit is 2.
    assert F.nic_check_digit("12345678") == "2"
    assert F.nic_check_digit("X12345678") == "2"
    assert F.make_nic("X", "12345678") == "X123456782"
    assert F.make_nic("X", "00000000") == "X000000000"


@pytest.mark.parametrize("body", ["1234567", "123456789", "1234567a", "XX1234567", ""])
def test_nic_check_digit_rejects_bad_bodies(body: str) -> None:
    with pytest.raises(ValueError):
        F.nic_check_digit(body)


@pytest.mark.parametrize("letter", ["x", "1", "XX", ""])
def test_make_nic_rejects_bad_letters(letter: str) -> None:
    with pytest.raises(ValueError):
        F.make_nic(letter, "12345678")


@settings(max_examples=200)
@given(st.sampled_from(string.ascii_uppercase), st.text(string.digits, min_size=8, max_size=8))
def test_make_nic_is_luhn_valid_and_passes_check(letter: str, digits: str) -> None:
    nic = F.make_nic(letter, digits)
    assert luhn_valid(nic[1:])
    assert F.check_nic(nic) is None


@settings(max_examples=200)
@given(
    st.text(string.digits, min_size=8, max_size=8),
    st.integers(0, 8),
    st.integers(1, 9),
)
def test_nic_single_digit_errors_are_caught(digits: str, pos: int, delta: int) -> None:
    nic = F.make_nic("X", digits)
    wrong = nic[: pos + 1] + str((int(nic[pos + 1]) + delta) % 10) + nic[pos + 2 :]
    assert F.check_nic(wrong) == f"{wrong} FAILS THE CHECK DIGIT"


@pytest.mark.parametrize("value", ["X12345678", "X1234567820", "123456782X", "x123456782", ""])
def test_nic_format_invalid(value: str) -> None:
    reason = F.check_nic(value)
    assert reason is not None
    assert "LETTER + 9 DIGITS" in reason


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize("value", ["20230216", "20240229", "20000229", "19000101", "20250630"])
def test_past_dates_valid(value: str) -> None:
    assert F.check_doc(value, today=TODAY) is None
    assert F.check_dob(value, today=TODAY) is None
    assert F.check_doi(value, today=TODAY) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("20231345", "20231345 IS NOT A DATE"),
        ("20230229", "20230229 IS NOT A DATE"),
        ("19000229", "19000229 IS NOT A DATE"),
        ("20230431", "20230431 IS NOT A DATE"),
        ("00000101", "00000101 IS NOT A DATE"),
        ("2023021", "2023021 IS NOT CCYYMMDD"),
        ("2023-02-16", "2023-02-16 IS NOT CCYYMMDD"),
        ("\uff12\uff10\uff12\uff13\uff10\uff12\uff11\uff16", "???????? IS NOT CCYYMMDD"),  # full-width
        ("20250701", "20250701 IS IN THE FUTURE"),
    ],
)
def test_dates_invalid(value: str, reason: str) -> None:
    assert F.check_doi(value, today=TODAY) == reason
    assert F.check_doc(value, today=TODAY) == reason
    assert F.check_dob(value, today=TODAY) == reason


def test_doi_against_dob() -> None:
    assert F.check_doi("20230216", dob="19800101", today=TODAY) is None
    assert F.check_doi("19800101", dob="19800101", today=TODAY) is None
    assert F.check_doi("19791231", dob="19800101", today=TODAY) == ("19791231 IS BEFORE DOB 19800101")
    # A DOB that is no date is ignored; the DOI's own problems come first.
    assert F.check_doi("19791231", dob="garbage", today=TODAY) is None
    assert F.check_doi("20231345", dob="19800101", today=TODAY) == "20231345 IS NOT A DATE"


def test_today_follows_a_wall_clock_stepped_back_over_midnight(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cached date is kept only while the clock is inside that day: a step back over
    midnight (NTP, an operator) gives yesterday's date again at once."""
    import time
    import types

    midnight = dt.datetime(2026, 12, 3).timestamp()  # local midnight
    now = [midnight + 30]
    monkeypatch.setattr(F, "time", types.SimpleNamespace(time=lambda: now[0], localtime=time.localtime))
    monkeypatch.setattr(F, "_today_cache", (0.0, 0.0, ""))
    assert F.today_text() == "20261203"
    now[0] -= 60
    assert F.today_text() == "20261202"
    now[0] += 3600
    assert F.today_text() == "20261203"


def test_today_defaults_to_the_local_date() -> None:
    today = dt.date.today()
    assert F.today_text() == today.strftime("%Y%m%d")
    assert F.today_text(TODAY) == "20250630"
    tomorrow = (today + dt.timedelta(days=2)).strftime("%Y%m%d")
    assert F.check_doc(tomorrow) == f"{tomorrow} IS IN THE FUTURE"


# --------------------------------------------------------------------------- free text


def test_mis() -> None:
    assert F.check_mis("") is None
    assert F.check_mis("annual photo. left arm tattoo ~ {x}") is None
    assert F.check_mis("X" * 200) is None
    assert F.check_mis("X" * 201) == "201 CHARACTERS, AT MOST 200"
    assert F.check_mis("CAFÉ") == "CAF? HAS CHARACTERS OTHER THAN PRINTABLE ASCII"
    assert F.check_mis("A\nB") is not None
    assert F.normalise_mis("annual photo") == "ANNUAL PHOTO"


@pytest.mark.parametrize(
    "value",
    [
        "SMITH, JOHN",
        "SMITH, JOHN PAUL",
        "O'BRIEN, MARY-KATE ANN",
        "DE LA CRUZ, JUAN",
        "smith, john",
        "A, B",
        "ABCDEFGHIJKLMNOPQRST, ABCDEFGH",  # 30
    ],
)
def test_nam_valid(value: str) -> None:
    assert F.check_nam(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "SMITH JOHN",
        "SMITH,JOHN",
        "SMITH, ",
        ", JOHN",
        "SMITH, JOHN1",
        "SMITH,  JOHN",
        "SMITH, JOHN ",
        "SMITH, JOHN, PAUL",
        "-SMITH, JOHN",
        "SMİTH, JOHN",
        "",
    ],
)
def test_nam_invalid(value: str) -> None:
    assert F.check_nam(value) == f"{F.show(value)} IS NOT LAST, FIRST MIDDLE"


def test_nam_too_long() -> None:
    assert F.check_nam("ABCDEFGHIJKLMNOPQRST, ABCDEFGHI") == "31 CHARACTERS, AT MOST 30"
    assert F.normalise_nam("smith, john") == "SMITH, JOHN"


def test_show_cuts_and_masks() -> None:
    assert F.show("ABC") == "ABC"
    assert F.show("A\x00B") == "A?B"
    assert F.show("X" * 50) == "X" * 37 + "..."


def test_every_rule_has_a_valid_example_and_a_bad_value() -> None:
    import re

    for rule in F.FIELDS:
        if rule.pattern is not None and rule.code != "IMAGE":
            assert re.fullmatch(rule.pattern, rule.example), rule.code
        assert rule.bad != rule.example
