"""Traffic generation on seeded records (`switch gen`). Pure: no Kafka, no clock.

The same records, options and seed give the same file, byte for byte.

Traffic is made of operator sessions, one record each, following the state bulletin:
query the record (QIM by NAM/SEX/DOB, LNO or NIC), enter an image (EIM) or modify one
(MII), re-query (usually NAM/SEX/DOB, as step 4 asks), then sometimes modify or cancel
(XIM) and enter again. About `sessions` sessions are open at once and interleave, as
many operators do; each next request is taken from the session idle longest, so the
steps of one session are far apart in the file. A session's step depends on its
previous step (an operator waits for the reply); a modify, cancel or query by IMN
names the entering step's IMN as `$imn:<step-id>`.

The MKE mix is kept by drawing each next MKE with odds that grow with its shortfall
against the target, so the mix holds from a few hundred requests on. A modify or
cancel needs an image entered earlier in the file; when none is there, an entry is
made instead (the bulletin's "enter or modify"), and the shortfall evens out later.

The generator knows only what the file itself does to the records: it assumes they
hold no images when the file starts (a fresh `switch seed`). Replayed twice against
the same stores, a file's entries meet the images the first run left and are
rejected ON_FILE (the limit of one active mugshot). Generate with records seeded
afresh, or expect those rejects.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import msgspec

from switch.contract.internal import RecordEntry
from switch.errors import SwitchError
from switch.loadtest.photos import PhotoCache
from switch.loadtest.traffic import IMG_PREFIX, IMN_PREFIX, Header, ImageLine, Step, Traffic

MKES = ("EIM", "MII", "XIM", "QIM")
DEFAULT_MIX: Mapping[str, float] = {"QIM": 0.5, "EIM": 0.25, "MII": 0.15, "XIM": 0.10}
LIMITS = {"M": 1, "S": 1, "I": 10}  # active images per record and type (DOMAIN.md)
INVALID_KINDS = (
    "bad-doi", "future-doi", "bad-ori", "wrong-owner", "unknown-lno", "bad-image",
    "missing-field", "garbage", "noise",
)
DEFAULT_DATE = "20250101"  # the population's reference date: no hidden "today"
SESSION_END_P = 0.5  # after a re-query, the session ends with this chance
SESSION_MAX_STEPS = 10

_MIS = {
    "M": ("ANNUAL PHOTO", "ANNUAL PHOTO, GLASSES", "BEARD", "SHAVED HEAD", "REGISTRATION PHOTO"),
    "S": ("SIGNATURE ON REGISTRATION FORM",),
    "I": ("TATTOO LEFT FOREARM", "SCAR RIGHT CHEEK", "TATTOO NECK", "BIRTHMARK LEFT HAND",
          "TATTOO RIGHT SHOULDER"),
}


class GenError(SwitchError):
    """Bad options or records for the generator."""


@dataclass(frozen=True, kw_only=True)
class GenOptions:
    count: int
    seed: int = 1
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    invalid_rate: float = 0.02
    image_kb: tuple[float, float] = (30.0, 8.0)  # mean, standard deviation
    date: str = DEFAULT_DATE  # DOI and DOC are drawn up to this date
    sessions: int = 50
    variants: int = 4  # photos kept per size bucket

    def check(self) -> None:
        if self.count < 0:
            raise GenError("--count must be 0 or more")
        if not 0.0 <= self.invalid_rate <= 1.0:
            raise GenError("--invalid-rate must be between 0 and 1")
        if self.image_kb[0] < 1 or self.image_kb[1] < 0:
            raise GenError("--image-kb: the mean is at least 1 KB, the deviation 0 or more")
        if self.sessions < 1 or self.variants < 1:
            raise GenError("--sessions and variants must be at least 1")
        try:
            date(int(self.date[:4]), int(self.date[4:6]), int(self.date[6:8]))
        except ValueError:
            raise GenError(f"--date {self.date!r}: expected CCYYMMDD") from None


def parse_mix(text: str) -> dict[str, float]:
    """`EIM=0.2,QIM=0.8` -> weights summing to 1. Unnamed MKEs get 0."""
    weights: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip().upper()
        if not sep or name not in MKES:
            raise GenError(f"--mix {text!r}: expected MKE=weight pairs, MKE one of {', '.join(MKES)}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise GenError(f"--mix {text!r}: {value!r} is not a number") from None
        if weights[name] < 0:
            raise GenError(f"--mix {text!r}: weights are 0 or more")
    total = sum(weights.values())
    if total <= 0:
        raise GenError(f"--mix {text!r}: at least one weight must be positive")
    return {k: weights.get(k, 0.0) / total for k in MKES}


def parse_image_kb(text: str) -> tuple[float, float]:
    """`30` or `30:8` -> (mean, standard deviation) in KB."""
    mean, _, sd = text.partition(":")
    try:
        m = float(mean)
        s = float(sd) if sd else m / 4
    except ValueError:
        raise GenError(f"--image-kb {text!r}: expected MEAN[:SD] in KB, e.g. 30:8") from None
    return m, s


def load_records(path: str | Path) -> list[RecordEntry]:
    """Records written by `switch seed --out` (or `switch up` into <home>/records.jsonl)."""
    decoder = msgspec.json.Decoder(RecordEntry)
    out: list[RecordEntry] = []
    try:
        with open(path, "rb") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        out.append(decoder.decode(line))
                    except msgspec.DecodeError as exc:
                        raise GenError(f"{path}:{number}: not a record: {exc}") from None
    except OSError as exc:
        raise GenError(f"cannot read records {path}: {exc.strerror}") from None
    if not out:
        raise GenError(f"{path}: no records (write some with `switch seed --out FILE`)")
    return out


# --------------------------------------------------------------------------- state


@dataclass
class _Image:
    step: str  # the EIM step whose reply gives the IMN
    imt: str
    image_id: str
    doi: str


@dataclass
class _Offender:
    record: RecordEntry
    active: list[_Image] = field(default_factory=list)
    in_session: bool = False

    def free_types(self) -> list[str]:
        return [t for t, limit in LIMITS.items()
                if sum(1 for i in self.active if i.imt == t) < limit]


@dataclass
class _Session:
    off: _Offender
    term: str
    phase: str = "lookup"  # lookup | enter | requery | change
    last_step: str | None = None
    last_used: int = -1
    steps: int = 0
    changed: bool = False  # an entry, modify or cancel since the last query


_NATURAL = {"lookup": ("QIM",), "enter": ("EIM", "MII"), "requery": ("QIM",), "change": ("MII", "XIM")}


class Generator:
    def __init__(self, records: list[RecordEntry], options: GenOptions,
                 photos: PhotoCache | None = None) -> None:
        options.check()
        if not records:
            raise GenError("no records to generate traffic for")
        self.opt = options
        self.rng = random.Random(options.seed)
        self.photos = photos or PhotoCache(seed=options.seed, variants=options.variants)
        self.records = list(records)
        order = list(range(len(records)))
        self.rng.shuffle(order)
        self.offenders = [_Offender(records[i]) for i in order]
        self.oris = sorted({r.ori for r in records})
        self.lnos = {r.lno for r in records}
        self.next_offender = 0
        self.sessions: list[_Session] = []
        self.sessions_started = 0
        self.realized = dict.fromkeys(MKES, 0)
        self.valid = 0
        self.n = 0
        self.today = date(int(options.date[:4]), int(options.date[4:6]), int(options.date[6:8]))
        self.used_images: dict[str, None] = {}  # in order of first use
        self.prefix = f"g{options.seed}"

    # ------------------------------------------------------------------ driving

    def run(self) -> Traffic:
        steps: list[Step] = []
        while self.n < self.opt.count:
            self.n += 1
            if self.opt.invalid_rate and self.rng.random() < self.opt.invalid_rate:
                steps.append(self._invalid())
            else:
                steps.append(self._valid())
        header = Header(source="gen", params=self.params())
        images = {i: self.photos.images[i] for i in self.used_images}
        return Traffic(header=header, images=images, steps=steps)

    def params(self) -> dict[str, Any]:
        o = self.opt
        return {
            "seed": o.seed, "count": o.count, "mix": dict(o.mix), "invalid_rate": o.invalid_rate,
            "image_kb": list(o.image_kb), "date": o.date, "sessions": o.sessions,
            "variants": o.variants, "records": len(self.records),
        }

    def image_lines(self) -> Iterable[ImageLine]:
        for i in self.used_images:
            yield ImageLine(id=i, data=self.photos.images[i], size=self.photos.sizes[i])

    def _ids(self) -> tuple[str, str]:
        return f"s{self.n:06d}", f"{self.prefix}-{self.n:06d}"

    def _choose_mke(self) -> str:
        """Odds = target weight plus the shortfall so far, so the mix converges."""
        k = self.valid + 1
        odds = [(m, max(0.0, w * k - self.realized[m] + w)) for m, w in self.opt.mix.items() if w > 0]
        total = sum(o for _, o in odds)
        r = self.rng.random() * total
        for m, o in odds:
            r -= o
            if r < 0:
                return m
        return odds[-1][0]

    @staticmethod
    def _can(off: _Offender, mke: str) -> bool:
        if mke in ("MII", "XIM"):
            return bool(off.active)
        if mke == "EIM":
            return bool(off.free_types())
        return True

    def _session_for(self, mke: str) -> _Session:
        """A session idle for at least half the pool's size whose next natural step is
        `mke`; else a new one while the pool is not full; else the idlest that can."""
        natural = [s for s in self.sessions if mke in _NATURAL[s.phase] and self._can(s.off, mke)]
        rested = [s for s in natural if self.n - s.last_used >= self.opt.sessions // 2]
        if rested:
            return min(rested, key=lambda s: s.last_used)
        if len(self.sessions) < self.opt.sessions:
            return self._new_session()
        pool = [s for s in self.sessions if self._can(s.off, mke)]
        if pool:
            return min(pool, key=lambda s: s.last_used)
        return self._new_session()

    def _new_session(self) -> _Session:
        if len(self.sessions) >= self.opt.sessions:
            self._end(min(self.sessions, key=lambda s: s.last_used))
        off = None
        for _ in range(len(self.offenders)):
            cand = self.offenders[self.next_offender]
            self.next_offender = (self.next_offender + 1) % len(self.offenders)
            if not cand.in_session:
                off = cand
                break
        if off is None:  # every record is in a session: close the idlest
            oldest = min(self.sessions, key=lambda s: s.last_used)
            self._end(oldest)
            off = oldest.off
        off.in_session = True
        self.sessions_started += 1
        session = _Session(off=off, term=f"T{self.sessions_started % 1000:03d}")
        self.sessions.append(session)
        return session

    def _end(self, session: _Session) -> None:
        session.off.in_session = False
        self.sessions.remove(session)

    # ------------------------------------------------------------------ valid steps

    def _valid(self) -> Step:
        self.valid += 1
        mke = self._choose_mke()
        session = self._session_for(mke)
        off = session.off
        if not self._can(off, mke):  # enter or modify: the bulletin's choice
            mke = "EIM" if self._can(off, "EIM") else "MII" if self._can(off, "MII") else "QIM"
        step_id, mid = self._ids()
        base = {"mke": mke, "mid": mid, "ori": off.record.ori, "term": session.term}
        if mke == "QIM":
            request = base | self._query_fields(session)
        elif mke == "EIM":
            request = base | self._enter(off, step_id)
        elif mke == "MII":
            request = base | self._modify(off)
        else:
            request = base | self._cancel(off)
        self.realized[mke] += 1
        step = Step(id=step_id, request=request, depends_on=session.last_step, key=off.record.lno)
        self._advance(session, mke, step_id)
        return step

    def _advance(self, session: _Session, mke: str, step_id: str) -> None:
        session.last_step = step_id
        session.last_used = self.n
        session.steps += 1
        if mke == "QIM":
            requery = session.changed
            session.phase = "change" if requery else "enter"
            session.changed = False
            if requery and self.rng.random() < SESSION_END_P:
                self._end(session)
                return
        else:
            session.changed = True
            session.phase = "enter" if mke == "XIM" else "requery"
        if session.steps >= SESSION_MAX_STEPS:
            self._end(session)

    def _query_fields(self, session: _Session) -> dict[str, Any]:
        rec = session.off.record
        r = self.rng.random()
        if session.phase == "requery" or session.changed:  # bulletin step 4: NAM/SEX/DOB
            if r < 0.6:
                return {"nam": rec.nam, "sex": rec.sex, "dob": rec.dob}
            if r < 0.85 or not session.off.active:
                return {"lno": rec.lno}
            return {"imn": IMN_PREFIX + self.rng.choice(session.off.active).step}
        if r < 0.45:
            return {"nam": rec.nam, "sex": rec.sex, "dob": rec.dob}
        if r < 0.85 or rec.nic is None:
            return {"lno": rec.lno}
        return {"nic": rec.nic}

    def _photo(self, off: _Offender) -> str:
        mean, sd = self.opt.image_kb
        kb = max(1.0, self.rng.gauss(mean, sd)) if sd else mean
        image_id = self.photos.pick(kb, self.rng, avoid={i.image_id for i in off.active})
        self.used_images.setdefault(image_id)
        return image_id

    def _date(self, max_days_back: int, not_before: str | None = None) -> str:
        d = self.today - timedelta(days=int(self.rng.random() * (max_days_back + 1)))
        text = d.strftime("%Y%m%d")
        return max(text, not_before) if not_before else text

    def _enter(self, off: _Offender, step_id: str) -> dict[str, Any]:
        free = off.free_types()
        if "M" in free:
            imt = "M"
        elif "S" in free and ("I" not in free or self.rng.random() < 0.3):
            imt = "S"
        else:
            imt = "I"
        image_id = self._photo(off)
        doi = self._date(180, not_before=off.record.dob)
        fields: dict[str, Any] = {"lno": off.record.lno, "imt": imt, "doi": doi,
                                  "image": IMG_PREFIX + image_id}
        if self.rng.random() < 0.5:
            fields["mis"] = self.rng.choice(_MIS[imt])
        off.active.append(_Image(step=step_id, imt=imt, image_id=image_id, doi=doi))
        return fields

    def _modify(self, off: _Offender) -> dict[str, Any]:
        image = self.rng.choice(off.active)
        fields: dict[str, Any] = {"imn": IMN_PREFIX + image.step}
        if self.rng.random() < 0.5:
            image.image_id = self._photo(off)
            fields["image"] = IMG_PREFIX + image.image_id
        if self.rng.random() < 0.4:
            image.doi = self._date(30, not_before=off.record.dob)
            fields["doi"] = image.doi
        if self.rng.random() < 0.5 or len(fields) == 1:
            fields["mis"] = self.rng.choice(_MIS[image.imt])
        return fields

    def _cancel(self, off: _Offender) -> dict[str, Any]:
        image = self.rng.choice(off.active)
        off.active.remove(image)
        return {"imn": IMN_PREFIX + image.step, "doc": self._date(5)}

    # ------------------------------------------------------------------ invalid steps

    def _invalid(self) -> Step:
        kind = INVALID_KINDS[int(self.rng.random() * len(INVALID_KINDS))]
        rec = self.records[int(self.rng.random() * len(self.records))]
        step_id, mid = self._ids()
        tag = f"invalid:{kind}"
        if kind == "garbage":  # not UTF-8, but mid and ORI can be read: a REJECTED reply
            raw = (b'{"mid":"' + mid.encode() + b'","ori":"' + rec.ori.encode()
                   + b'","mke":"EIM","lno":"\xff\xfe' + self.rng.randbytes(48))
            return Step(id=step_id, raw=raw, raw_mid=mid, key=rec.lno, tag=tag)
        if kind == "noise":  # nothing readable: a dead letter, and no reply
            raw = b"\xff" + self.rng.randbytes(79)
            return Step(id=step_id, raw=raw, expect_reply=False, tag=tag)
        off = _Offender(rec)
        eim: dict[str, Any] = {
            "mke": "EIM", "mid": mid, "ori": rec.ori, "lno": rec.lno, "imt": "M",
            "doi": self._date(180, not_before=rec.dob), "image": IMG_PREFIX + self._photo(off),
        }
        if kind == "bad-doi":
            eim["doi"] = f"{self.today.year - 1}1345"
        elif kind == "future-doi":
            eim["doi"] = f"{self.today.year + 100}0101"
        elif kind == "bad-ori":
            eim["ori"] = rec.ori[:4]
        elif kind == "wrong-owner":
            others = [o for o in self.oris if o != rec.ori] or ["IL9990000"]
            eim["ori"] = self.rng.choice(others)
        elif kind == "unknown-lno":
            lno = rec.lno
            while lno in self.lnos:
                lno = f"Z{int(self.rng.random() * 100):02d}Z{int(self.rng.random() * 10000):04d}"
            eim["lno"] = lno
        elif kind == "bad-image":
            eim["image"] = base64.b64encode(b"\x00NOT AN IMAGE" + self.rng.randbytes(200)).decode()
        else:  # missing-field
            del eim["doi"]
        return Step(id=step_id, request=eim, key=rec.lno, tag=tag)


def generate(records: list[RecordEntry], options: GenOptions,
             photos: PhotoCache | None = None) -> Traffic:
    """A whole traffic file in memory."""
    return Generator(records, options, photos).run()


def describe(traffic: Traffic) -> dict[str, Any]:
    """Counts for the generator's summary line (and tests)."""
    by_mke: dict[str, int] = {}
    by_tag: dict[str, int] = {}
    for s in traffic.steps:
        by_mke[s.mke] = by_mke.get(s.mke, 0) + 1
        by_tag[s.tag] = by_tag.get(s.tag, 0) + 1
    sizes = [len(v) * 3 // 4 for v in traffic.images.values()]
    return {
        "steps": len(traffic.steps),
        "by_mke": by_mke,
        "by_tag": by_tag,
        "dependent": sum(1 for s in traffic.steps if s.dependencies()),
        "images": len(sizes),
        "image_kb_mean": round(sum(sizes) / len(sizes) / 1024, 1) if sizes else 0.0,
    }


def summary_line(info: dict[str, Any]) -> str:
    mix = " ".join(f"{k}={v}" for k, v in sorted(info["by_mke"].items()))
    invalid = sum(v for k, v in info["by_tag"].items() if k.startswith("invalid"))
    return (f"{info['steps']} requests ({mix}; {invalid} invalid; {info['dependent']} dependent), "
            f"{info['images']} distinct images, mean {info['image_kb_mean']} KB")
