"""Filters are pure: parsed from what an operator types, applied to constructed replies."""

from __future__ import annotations

import pytest

from switch.console.filters import FilterError, ReplyFilter
from switch.contract.messages import Reply
from tests.console.helpers import OTHER_ORI, eim_reply, qim_reply, reject_reply


def test_no_filter_passes_everything() -> None:
    f = ReplyFilter()
    assert all(f(r) for r in (eim_reply(), reject_reply(), qim_reply()))
    assert f.describe() == "all replies"


def test_values_are_case_free_repeatable_and_comma_separated() -> None:
    f = ReplyFilter.parse(ori=["il0160000"], mke=["eim,qim"], status=["complete", " REJECTED "])
    assert f.oris == {"IL0160000"}
    assert f.mkes == {"EIM", "QIM"}
    assert f.statuses == {"COMPLETE", "REJECTED"}
    assert f.describe() == "ori IL0160000; mke EIM,QIM; status COMPLETE,REJECTED"


def test_and_across_filters_or_within_one() -> None:
    f = ReplyFilter.parse(ori=["IL0160000"], status=["REJECTED,PENDING"])
    assert f(reject_reply())
    assert f(eim_reply(status="PENDING", ncic="QUEUED"))
    assert not f(eim_reply())  # COMPLETE
    assert not f(reject_reply(ori=OTHER_ORI))  # other agency
    assert ReplyFilter.parse(mke=["QIM"])(qim_reply())
    assert not ReplyFilter.parse(mke=["QIM"])(eim_reply())


def test_a_reply_without_ori_fails_an_ori_filter() -> None:
    unread = Reply(mid=None, cid="c", mke=None, ori=None, status="REJECTED")
    assert not ReplyFilter.parse(ori=["IL0160000"])(unread)
    assert not ReplyFilter.parse(mke=["EIM"])(unread)
    assert ReplyFilter.parse(status=["REJECTED"])(unread)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": ["DONE"]}, "--status DONE: expected one of COMPLETE, PARTIAL, PENDING, REJECTED"),
        ({"mke": ["EIM,XYZ"]}, "--mke XYZ: expected one of EIM, MII, XIM, QIM"),
        ({"ori": ["IL01"]}, "--ori IL01: an ORI is 9 characters"),
    ],
)
def test_typos_are_refused_with_what_would_match(kwargs: dict[str, list[str]], message: str) -> None:
    with pytest.raises(FilterError, match=message.replace("(", r"\(")):
        ReplyFilter.parse(**kwargs)
