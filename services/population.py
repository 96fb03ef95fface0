"""A deterministic synthetic record population: the same seed gives the same records.

Names, sexes and dates of birth are invented from small lists; owners are drawn from
a fixed set of plausible Illinois ORIs (`IL` + a 3-digit county number + 4 digits,
0000 being the sheriff). Dates of birth are fixed against a reference date, not
today, so a population does not change from one day to the next. Records are made
one after another from one random stream, so the first N records of a seed are the
same whatever the count asked for.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from switch.contract.fields import make_nic
from switch.contract.internal import RecordEntry

SOR = "SOR"
VOAY = "VOAY"
NAME_MAX = 30

# Counties by their number in the alphabetical list of Illinois's 102 counties.
_COUNTIES = (
    "001", "010", "016", "019", "020", "022", "031", "037", "041", "043", "045", "049",
    "050", "056", "060", "063", "072", "079", "082", "084", "089", "090", "097", "099",
    "101",
)
# Per county: the sheriff's office and a municipal police department.
ORIS: tuple[str, ...] = tuple(
    f"IL{county}{agency}" for county in _COUNTIES for agency in ("0000", "0300")
)

_LAST = (
    "ADAMS", "ALLEN", "ANDERSON", "BAILEY", "BAKER", "BARNES", "BELL", "BENNETT", "BROOKS",
    "BROWN", "BRYANT", "BUTLER", "CAMPBELL", "CARTER", "CASTILLO", "CLARK", "COLEMAN", "COLLINS",
    "COOK", "COOPER", "COX", "CRUZ", "DAVIS", "DIAZ", "EDWARDS", "EVANS", "FISHER", "FLORES",
    "FOSTER", "GARCIA", "GOMEZ", "GONZALEZ", "GRAHAM", "GRAY", "GREEN", "GRIFFIN", "HALL",
    "HAMILTON", "HARRIS", "HAYES", "HENDERSON", "HERNANDEZ", "HILL", "HOWARD", "HUGHES", "JACKSON",
    "JAMES", "JENKINS", "JOHNSON", "JONES", "KELLY", "KING", "KOWALSKI", "LEE", "LEWIS", "LONG",
    "LOPEZ", "MARTIN", "MARTINEZ", "MILLER", "MITCHELL", "MOORE", "MORALES", "MORGAN", "MORRIS",
    "MURPHY", "MYERS", "NELSON", "NGUYEN", "NOWAK", "OCONNOR", "ORTIZ", "PARKER", "PATEL", "PEREZ",
    "PERRY", "PETERSON", "PHILLIPS", "POWELL", "PRICE", "RAMIREZ", "REED", "REYES", "RICHARDSON",
    "RIVERA", "ROBERTS", "ROBINSON", "RODRIGUEZ", "ROGERS", "ROSS", "RUSSELL", "SANCHEZ",
    "SANDERS", "SCOTT", "SIMMONS", "SMITH", "STEWART", "SULLIVAN", "TAYLOR", "THOMAS", "THOMPSON",
    "TORRES", "TURNER", "WALKER", "WARD", "WASHINGTON", "WATSON", "WHITE", "WILLIAMS", "WILSON",
    "WOOD", "WRIGHT", "WOJCIK", "YOUNG", "ZIELINSKI",
)
_MALE = (
    "AARON", "ADAM", "ALAN", "ALBERT", "ANDREW", "ANTHONY", "ARTHUR", "BENJAMIN", "BRANDON",
    "BRIAN", "CARL", "CHARLES", "CHRISTOPHER", "DANIEL", "DAVID", "DENNIS", "DONALD", "DOUGLAS",
    "EDWARD", "ERIC", "FRANK", "GARY", "GEORGE", "GERALD", "GREGORY", "HAROLD", "HENRY", "JACK",
    "JAMES", "JASON", "JEFFREY", "JEREMY", "JOHN", "JONATHAN", "JORGE", "JOSE", "JOSEPH", "JOSHUA",
    "JUAN", "JUSTIN", "KENNETH", "KEVIN", "LARRY", "LUIS", "MARK", "MATTHEW", "MICHAEL",
    "NICHOLAS", "PATRICK", "PAUL", "PETER", "RAYMOND", "RICHARD", "ROBERT", "RONALD", "RYAN",
    "SAMUEL", "SCOTT", "STEPHEN", "STEVEN", "TERRY", "THOMAS", "TIMOTHY", "TYLER", "WALTER",
    "WAYNE", "WILLIAM",
)
_FEMALE = (
    "AMANDA", "AMY", "ANGELA", "ANNA", "ASHLEY", "BARBARA", "BRENDA", "CAROL", "CATHERINE",
    "CHRISTINE", "CYNTHIA", "DEBORAH", "DENISE", "DIANE", "DONNA", "DOROTHY", "ELIZABETH", "EMILY",
    "HEATHER", "HELEN", "JANET", "JENNIFER", "JESSICA", "JOYCE", "JULIE", "KAREN", "KATHLEEN",
    "KELLY", "KIMBERLY", "LAURA", "LINDA", "LISA", "MARGARET", "MARIA", "MARIE", "MARY", "MELISSA",
    "MICHELLE", "NANCY", "NICOLE", "PAMELA", "PATRICIA", "REBECCA", "ROSA", "RUTH", "SANDRA",
    "SARAH", "SHARON", "STEPHANIE", "SUSAN", "TERESA", "VIRGINIA",
)

# Adults: born 18 to 80 years before the reference date.
REFERENCE_DATE = date(2025, 1, 1)
_DOB_FIRST = date(REFERENCE_DATE.year - 80, 1, 1)
_DOB_SPAN_DAYS = (date(REFERENCE_DATE.year - 18, 1, 1) - _DOB_FIRST).days
_DOB_TEXTS = tuple(
    (_DOB_FIRST + timedelta(days=d)).strftime("%Y%m%d") for d in range(_DOB_SPAN_DAYS)
)

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def generate(count: int, seed: int, *, sor_share: float = 0.85) -> list[RecordEntry]:
    """`count` records; SOR records (with a NIC) make about `sor_share` of them."""
    if count < 0:
        raise ValueError("count must be 0 or more")
    if not 0.0 <= sor_share <= 1.0:
        raise ValueError("sor_share must be between 0 and 1")
    rng = random.Random(seed)
    rand = rng.random  # one float per draw: several times faster than choice()/randrange()
    dobs = _DOB_TEXTS
    letters, last_names, n_oris = _LETTERS, _LAST, len(ORIS)
    lnos: set[str] = set()
    nics: set[str] = set()
    out: list[RecordEntry] = []
    for _ in range(count):
        while True:
            lno = (
                f"{letters[int(rand() * 26)]}{int(rand() * 100):02d}"
                f"{letters[int(rand() * 26)]}{int(rand() * 10000):04d}"
            )
            if lno not in lnos:
                lnos.add(lno)
                break
        rtype = SOR if rand() < sor_share else VOAY
        nic = None
        if rtype == SOR:
            while True:
                nic = make_nic("X", f"{int(rand() * 100_000_000):08d}")
                if nic not in nics:
                    nics.add(nic)
                    break
        r = rand()
        sex = "M" if r < 0.86 else "F" if r < 0.995 else "U"
        firsts = _FEMALE if sex == "F" else _MALE if sex == "M" or rand() < 0.5 else _FEMALE
        n_first = len(firsts)
        nam = _name(
            last_names[int(rand() * len(last_names))],
            firsts[int(rand() * n_first)],
            firsts[int(rand() * n_first)],
            rand(),
        )
        out.append(
            RecordEntry(
                lno=lno,
                rtype=rtype,
                ori=ORIS[int(rand() * n_oris)],
                nic=nic,
                nam=nam,
                sex=sex,
                dob=dobs[int(rand() * len(dobs))],
            )
        )
    return out


def _name(last: str, first: str, middle: str, r: float) -> str:
    """`LAST, FIRST MIDDLE`: a middle name, an initial, or none; never over 30 characters."""
    if r < 0.45:
        name = f"{last}, {first} {middle}"
    elif r < 0.85:
        name = f"{last}, {first} {middle[0]}"
    else:
        name = f"{last}, {first}"
    if len(name) > NAME_MAX:
        name = f"{last}, {first} {middle[0]}"
    return name[:NAME_MAX]
