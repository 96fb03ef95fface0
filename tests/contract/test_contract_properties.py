"""Property tests of parse_request: round trips, robustness, and errors that name the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switch.contract import fields as F
from switch.contract.messages import AnyRequest, Codes, encode
from switch.contract.validate import ContractError, RequestInvalid, Unreadable, parse_request
from tests.contract.contract_strategies import (
    PRINTABLE,
    TODAY,
    json_values,
    request_like,
    requests,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_only_contract_errors(data: bytes) -> None:
    try:
        parse_request(data, today=TODAY)
    except Unreadable as exc:
        assert not exc.reason.startswith("INTERNAL"), exc.reason
    except ContractError:
        pass


@FAST
@given(requests)
def test_valid_requests_survive_encode_then_parse(req: AnyRequest) -> None:
    assert parse_request(encode(req), today=TODAY) == req


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_contract_errors(data: bytes) -> None:
    assert_only_contract_errors(data)


@FAST
@given(json_values, st.booleans())
def test_arbitrary_json_raises_only_contract_errors(value: Any, ascii_only: bool) -> None:
    # ensure_ascii=False with "surrogatepass" turns lone surrogates into invalid UTF-8.
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert_only_contract_errors(text.encode("utf-8", "surrogatepass"))


@FAST
@given(request_like, st.booleans())
def test_request_like_objects_raise_only_contract_errors(obj: dict[str, Any], ascii_only: bool) -> None:
    text = json.dumps(obj, ensure_ascii=ascii_only)
    assert_only_contract_errors(text.encode("utf-8", "surrogatepass"))


# --------------------------------------------------------------------------- invalid fields

not_text = st.one_of(
    st.integers(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)  # fmt: skip


def failing(check: Callable[[str], str | None]) -> st.SearchStrategy[str]:
    return st.text(max_size=40).filter(lambda s: check(s) is not None)


def _today(check: Callable[..., str | None]) -> Callable[[str], str | None]:
    return lambda s: check(s, today=TODAY)


bad_dates = failing(_today(F.check_doc)) | st.sampled_from(["20250701", "29991231", "20230229"])

BAD_TEXT: dict[str, st.SearchStrategy[str]] = {
    "mid": failing(F.check_mid),
    "ori": failing(F.check_ori),
    "term": st.text(PRINTABLE, min_size=33, max_size=40) | st.just("T\x07"),
    "reply_to": failing(F.check_reply_to),
    "lno": failing(F.check_lno),
    "imt": failing(F.check_imt),
    "doi": bad_dates,
    "mis": st.text(PRINTABLE, min_size=201, max_size=210) | st.sampled_from(["ÉTÉ", "A\tB"]),
    "imn": failing(F.check_imn),
    "doc": bad_dates,
    "nic": failing(F.check_nic),
    "nam": failing(F.check_nam),
    "sex": failing(F.check_sex),
    "dob": bad_dates,
    "image": st.sampled_from(["", "not base64", "QUJD=", "QQ", "QUJD\n", "QU JD"]),
}
FIELDS_OF: dict[str, tuple[str, ...]] = {
    "EIM": ("lno", "imt", "doi", "mis", "image"),
    "MII": ("imn", "doi", "mis", "image"),
    "XIM": ("imn", "doc"),
    "QIM": ("imn", "lno", "nic", "nam", "sex", "dob"),
}
COMMON = ("mid", "ori", "term", "reply_to")
REQUIRED: dict[str, tuple[str, ...]] = {
    "EIM": ("mid", "mke", "ori", "lno", "imt", "doi", "image"),
    "MII": ("mid", "mke", "ori", "imn"),
    "XIM": ("mid", "mke", "ori", "imn", "doc"),
    "QIM": ("mid", "mke", "ori"),
}


def wire(req: AnyRequest) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.json.decode(encode(req))
    return out


@FAST
@given(requests, st.data())
def test_each_invalid_field_is_named(req: AnyRequest, data: st.DataObject) -> None:
    obj = wire(req)
    field = data.draw(st.sampled_from(COMMON + FIELDS_OF[obj["mke"]]), label="field")
    value = data.draw(BAD_TEXT[field] | not_text, label="value")
    obj[field] = value
    with pytest.raises(RequestInvalid) as info:
        parse_request(json.dumps(obj).encode("utf-8", "surrogatepass"), today=TODAY)
    named = [e for e in info.value.errors if e.field == field]
    assert named, info.value.errors
    if field == "image":
        expected = Codes.IMAGE_INVALID
    elif field == "reply_to" and isinstance(value, str):
        expected = Codes.BAD_REPLY_TO
    else:
        expected = Codes.INVALID_FIELD
    assert named[0].code == expected
    assert named[0].text.startswith(f"REJECT MKE/{obj['mke']} ")
    assert field.upper() in named[0].text


@FAST
@given(requests, st.data())
def test_each_missing_required_field_is_named(req: AnyRequest, data: st.DataObject) -> None:
    obj = wire(req)
    field = data.draw(st.sampled_from(REQUIRED[obj["mke"]]), label="field")
    del obj[field]
    with pytest.raises(RequestInvalid) as info:
        parse_request(json.dumps(obj).encode(), today=TODAY)
    missing = [e for e in info.value.errors if e.code == Codes.MISSING_FIELD]
    assert [e.field for e in missing] == [field]
    assert missing[0].text.endswith(f"MISSING {field.upper()}")


@FAST
@given(requests, st.text(max_size=8).filter(lambda s: s not in F.MKES))
def test_unknown_mke_is_named(req: AnyRequest, mke: str) -> None:
    obj = wire(req)
    obj["mke"] = mke
    with pytest.raises(RequestInvalid) as info:
        parse_request(json.dumps(obj).encode("utf-8", "surrogatepass"), today=TODAY)
    assert [e.field for e in info.value.errors] == ["mke"]
