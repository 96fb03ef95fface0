"""Hypothesis strategies for valid request field values and whole requests."""

from __future__ import annotations

import datetime as dt
import string

from hypothesis import strategies as st

from switch.contract import fields as F
from switch.contract.messages import CancelImage, EnterImage, ModifyImage, QueryImage

# A fixed "today", injected everywhere, so generated dates never drift into the future.
TODAY = dt.date(2025, 6, 30)
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))
MIS_TRICKY = ["", ".", "X.", "10 A.M.", "A.B.C", "SEE/ALSO", "LNO/X17A4394", "MIS/ MIS/", " "]

mids = st.from_regex(F.MID_PATTERN, fullmatch=True)
oris = st.from_regex(F.ORI_PATTERN, fullmatch=True)
lnos = st.from_regex(F.LNO_PATTERN, fullmatch=True)
imts = st.sampled_from(F.IMTS)
voay_imns = st.from_regex(F.VOAY_IMN_PATTERN, fullmatch=True)
shared_imns = st.from_regex(F.SHARED_IMN_PATTERN, fullmatch=True)
imns = voay_imns | shared_imns
nics = st.builds(
    F.make_nic,
    st.sampled_from(string.ascii_uppercase),
    st.text(string.digits, min_size=8, max_size=8),
)
past_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY).map(lambda d: d.strftime("%Y%m%d"))
mises = st.text(PRINTABLE, max_size=F.MIS_MAX).map(str.upper) | st.sampled_from(MIS_TRICKY)
_word = st.from_regex(r"[A-Z]{1,6}(?:['-][A-Z]{1,4})?", fullmatch=True)
nams = st.builds(
    lambda last, first: f"{' '.join(last)}, {' '.join(first)}",
    st.lists(_word, min_size=1, max_size=2),
    st.lists(_word, min_size=1, max_size=2),
).filter(lambda n: len(n) <= F.NAM_MAX)
sexes = st.sampled_from(F.SEXES)
terms = st.none() | st.text(PRINTABLE, max_size=F.TERM_MAX)
reply_tos = st.none() | st.from_regex(r"[A-Za-z0-9._-]{0,20}", fullmatch=True).map(
    lambda s: F.DEFAULT_REPLY_PREFIX + s
)
images = st.binary(min_size=1, max_size=64)


def _common() -> dict[str, st.SearchStrategy[object]]:
    return {"mid": mids, "ori": oris, "term": terms, "reply_to": reply_tos}


enter_images = st.builds(
    EnterImage,
    **_common(),
    lno=lnos,
    imt=imts,
    doi=past_dates,
    image=images,
    mis=st.none() | mises,
)


@st.composite
def modify_images(draw: st.DrawFn) -> ModifyImage:
    which = draw(st.sets(st.sampled_from(["image", "doi", "mis"]), min_size=1))
    return ModifyImage(
        mid=draw(mids),
        ori=draw(oris),
        term=draw(terms),
        reply_to=draw(reply_tos),
        imn=draw(imns),
        image=draw(images) if "image" in which else None,
        doi=draw(past_dates) if "doi" in which else None,
        mis=draw(mises) if "mis" in which else None,
    )


cancel_images = st.builds(CancelImage, **_common(), imn=imns, doc=past_dates)


@st.composite
def query_images(draw: st.DrawFn) -> QueryImage:
    by = draw(st.sampled_from(["imn", "lno", "nic", "person"]))
    values: dict[str, str] = {}
    if by == "imn":
        values["imn"] = draw(imns)
    elif by == "lno":
        values["lno"] = draw(lnos)
    elif by == "nic":
        values["nic"] = draw(nics)
    else:
        values.update(nam=draw(nams), sex=draw(sexes), dob=draw(past_dates))
    return QueryImage(mid=draw(mids), ori=draw(oris), term=draw(terms), reply_to=draw(reply_tos), **values)


requests = enter_images | modify_images() | cancel_images | query_images()

# Arbitrary JSON values, and objects that look like requests but hold anything.
json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
FIELD_NAMES = [
    "mid", "mke", "ori", "term", "reply_to", "lno", "imt", "doi", "mis",
    "image", "imn", "doc", "nic", "nam", "sex", "dob",
]  # fmt: skip
request_like = st.dictionaries(
    st.sampled_from(FIELD_NAMES) | st.text(max_size=8),
    json_values | st.sampled_from(["EIM", "MII", "XIM", "QIM", "IL0160000", "QUJD"]),
    max_size=10,
)
