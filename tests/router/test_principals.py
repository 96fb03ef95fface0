"""The router's sender and ORI-binding rules (pure)."""

from __future__ import annotations

import msgspec

from switch.contract.messages import Codes
from switch.router.principals import (
    PRINCIPAL_HEADER,
    TRUSTED,
    Bindings,
    authorize,
    forward_headers,
    principal_name,
    reply_topic,
    sender_of,
)
from switch.security.agencies import Binding
from switch.settings import TopicSettings

T = TopicSettings(prefix="sw")


def _bindings() -> Bindings:
    b = Bindings()
    rec = Binding(name="CHI", principal="User:agency-CHI", oris=["IL0160000", "IL0160100"],
                  requests=T.agency_requests("CHI"), replies=T.agency_replies("CHI"))
    assert b.apply(b"CHI", msgspec.json.encode(rec))
    return b


def test_sender_is_named_by_the_topic_not_the_record() -> None:
    forged = [(PRINCIPAL_HEADER, b"CHI")]
    assert sender_of("sw.requests", forged, T) is None  # public topic: header ignored
    assert sender_of("sw.agency.CHI.requests", None, T) == "CHI"
    assert sender_of("sw.agency.CHI.requests", [(PRINCIPAL_HEADER, b"X")], T) == "CHI"
    assert sender_of("sw.requests.byori", forge_free(), T) is None
    assert sender_of("sw.requests.byori", forward_headers("CHI"), T) == "CHI"
    assert sender_of("sw.agency.a.b.requests", None, T) is None
    assert forward_headers(None) is None


def forge_free() -> list[tuple[str, bytes]]:
    return []


def test_an_agency_may_send_only_for_its_oris() -> None:
    b = _bindings()
    assert authorize("CHI", "IL0160100", "EIM", None, b, T) is None
    err = authorize("CHI", "IL0450300", "EIM", None, b, T)
    assert err is not None and err.code == Codes.NOT_AUTHORIZED and err.field == "ori"
    assert "ORI/IL0450300 IS NOT BOUND TO PRINCIPAL User:agency-CHI" in err.text
    assert authorize(None, "IL0450300", "EIM", None, b, T) is None  # trusted sender


def test_an_unbound_agency_is_refused() -> None:
    err = authorize("NEW", "IL0160000", "QIM", None, _bindings(), T)
    assert err is not None and err.code == Codes.NOT_AUTHORIZED and "NO ORI BINDING" in err.text


def test_an_agency_replies_only_to_its_own_topic() -> None:
    b = _bindings()
    assert authorize("CHI", "IL0160000", "QIM", "sw.agency.CHI.replies", b, T) is None
    for other in ("sw.replies", "sw.agency.DOC.replies", "sw.replies.x"):
        err = authorize("CHI", "IL0160000", "QIM", other, b, T)
        assert err is not None and err.code == Codes.NOT_AUTHORIZED and err.field == "reply_to"
    assert reply_topic("CHI", None, T) == "sw.agency.CHI.replies"
    assert reply_topic(None, "sw.replies.mine", T) == "sw.replies.mine"


def test_bindings_follow_the_compacted_topic() -> None:
    b = _bindings()
    assert b.apply(b"CHI", None) and b.get("CHI") is None
    assert not b.apply(b"X", b"not json")


def test_principal_names_in_the_audit() -> None:
    assert principal_name("CHI", True) == "User:agency-CHI"
    assert principal_name(None, True) == TRUSTED
    assert principal_name(None, False) is None
