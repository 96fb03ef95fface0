"""A seeded generator of hostile inputs for the public requests topic (pure: no Kafka).

Each input says what the switch owes it:
- `reply`: a readable request (a JSON object with a unique mid and a valid ORI): exactly
  one reply, whatever else is wrong with it (wrong types, huge or unicode fields, every
  field rule broken, malformed and hostile images).
- `dead`: not a readable request (random bytes, broken JSON, not an object): a dead
  letter at its offset, with a reason; at most one reply (the router may still read a
  mid and an ORI in broken JSON).
- `any`: the mid or the ORI itself is broken: no crash, and a reply or a dead letter."""

from __future__ import annotations

import base64
import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from switch.contract.internal import RecordEntry
from tests.images.samples import encode, photo, png_claiming, png_of_zeros

Owed = Literal["reply", "dead", "any"]


@dataclass(frozen=True)
class Input:
    value: bytes
    key: bytes
    owed: Owed
    mid: str | None
    kind: str


def _images() -> dict[str, bytes]:
    """Malformed and hostile images, built once (bytes, never logged)."""
    rgb = photo((640, 800))
    out: dict[str, bytes] = {}
    good = encode(rgb, "JPEG", quality=90)
    out["truncated_jpeg"] = good[: len(good) // 2]
    out["jpeg_header_garbage"] = good[:600] + bytes(random.Random(1).randbytes(4000))
    out["cmyk_jpeg"] = encode(rgb.convert("CMYK"), "JPEG")
    out["png16"] = encode(Image.new("I;16", (500, 600), 40000), "PNG")
    frames = [Image.new("RGB", (300, 400), (i * 40, 0, 0)) for i in range(4)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    out["animated_gif"] = buf.getvalue()
    exif = Image.Exif()
    exif[0x010E] = "X" * 60000  # ImageDescription: a huge EXIF segment
    out["huge_exif"] = encode(rgb, "JPEG", exif=exif.tobytes())
    out["polyglot"] = good + b"PK\x03\x04" + b"\0" * 200 + b"<script>alert(1)</script>"
    out["png_bomb_palette"] = png_of_zeros(8000, 5000, colour_type=3, trns=True)
    out["png_bomb_header"] = png_claiming(8000, 5000, colour_type=6)
    out["random"] = random.Random(2).randbytes(3000)
    out["empty"] = b""
    out["small"] = encode(Image.new("RGB", (120, 150), (10, 20, 30)), "JPEG")
    return out


class FuzzGen:
    """`FuzzGen(seed, records).inputs(n)`: n inputs, the same for the same seed."""

    def __init__(self, seed: int, records: list[RecordEntry], prefix: str = "fz") -> None:
        self.rnd = random.Random(seed)
        self.records = records
        self.prefix = prefix
        self.images = _images()
        self.n = 0

    def inputs(self, count: int) -> Iterator[Input]:
        makers = [
            (10, self._random_bytes), (10, self._broken_json), (5, self._not_object),
            (20, self._field_rules), (10, self._wrong_types), (4, self._huge_unicode),
            (12, self._hostile_image), (15, self._valid), (10, self._bad_mid_or_ori),
        ]
        weights = [w for w, _ in makers]
        for _ in range(count):  # lazily: a long storm would not fit in memory
            yield self.rnd.choices(makers, weights)[0][1]()

    # ------------------------------------------------------------------ helpers

    def _mid(self) -> str:
        self.n += 1
        return f"{self.prefix}-{self.n}"

    def _record(self) -> RecordEntry:
        return self.rnd.choice(self.records)

    def _base(self, mke: str | None = None) -> dict[str, object]:
        rec = self._record()
        mke = mke or self.rnd.choice(["EIM", "MII", "XIM", "QIM"])
        req: dict[str, object] = {"mke": mke, "mid": self._mid(), "ori": rec.ori, "lno": rec.lno}
        if mke == "EIM":
            req.update(imt="M", doi="20250101",
                       image=base64.b64encode(self.images["small"]).decode())
        elif mke == "MII":
            req.update(imn=rec.lno[:4] + "M0", mis="NEW CAPTION")
        elif mke == "XIM":
            req.update(imn=rec.lno[:4] + "M0")
        return req

    def _json(self, req: dict[str, object], kind: str, owed: Owed = "reply") -> Input:
        value = json.dumps(req, ensure_ascii=self.rnd.random() < 0.5).encode()
        mid = req.get("mid") if isinstance(req.get("mid"), str) else None
        return Input(value, str(req.get("lno", "k")).encode(errors="replace"), owed,
                     mid if isinstance(mid, str) else None, kind)

    # ------------------------------------------------------------------ makers

    def _random_bytes(self) -> Input:
        size = self.rnd.choice([0, 1, 7, 100, 5000])
        data = self.rnd.randbytes(size)
        if data[:1] in (b"{", b"[", b'"') or data.strip()[:1].isdigit():
            data = b"\xff" + data  # never valid JSON by chance
        return Input(data, self.rnd.randbytes(8), "dead", None, "random_bytes")

    def _broken_json(self) -> Input:
        whole = json.dumps(self._base()).encode()
        cut = self.rnd.choice([
            whole[: self.rnd.randrange(1, len(whole))],
            whole.replace(b'":', b'"', 1),
            whole + b"}}",
            whole.replace(b'"', b"'"),
        ])
        return Input(cut, b"k", "dead", None, "broken_json")

    def _not_object(self) -> Input:
        value = self.rnd.choice([b"[]", b"42", b'"EIM"', b"null", b"true", b"[{\"mid\":\"x\"}]"])
        return Input(value, b"k", "dead", None, "not_object")

    def _field_rules(self) -> Input:
        req = self._base()
        field, bad = self.rnd.choice([
            ("mke", "ZZZ"), ("mke", ""), ("lno", "1"), ("lno", "ABCDEFGHIJK12345"),
            ("imt", "Q"), ("doi", "20251399"), ("doi", "yesterday"), ("doi", "29991231"),
            ("imn", "!!!!"), ("mis", "Z" * 5000), ("image", "not base64 at all ***"),
            ("term", "X" * 300), ("reply_to", "no.such.topic"), ("reply_to", "../../etc"),
            ("lno", None), ("extra_field", "surprise"),
        ])
        if bad is None:
            req.pop(field, None)
        else:
            req[field] = bad
        return self._json(req, f"rule_{field}")

    def _wrong_types(self) -> Input:
        req = self._base()
        field = self.rnd.choice(["mke", "lno", "imt", "doi", "imn", "image", "mis", "term"])
        req[field] = self.rnd.choice([12, 3.5, True, None, ["a"], {"a": 1}, -1e308])
        return self._json(req, f"type_{field}")

    def _huge_unicode(self) -> Input:
        req = self._base()
        field = self.rnd.choice(["mis", "lno", "term", "imt"])
        text = self.rnd.choice([
            "\u202e\u0000\ufeff" * 50, "😀" * 20000, "Ω" * 100_000, "a\u0301" * 1000,
            "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace") * 10,
        ])
        req[field] = text
        return self._json(req, f"huge_{field}")

    def _hostile_image(self) -> Input:
        req = self._base("EIM")
        name = self.rnd.choice(sorted(self.images))
        req["image"] = base64.b64encode(self.images[name]).decode()
        return self._json(req, f"image_{name}")

    def _valid(self) -> Input:
        return self._json(self._base("QIM"), "valid_qim")

    def _bad_mid_or_ori(self) -> Input:
        req = self._base()
        choice = self.rnd.randrange(5)
        kind = ("mid_int", "mid_long", "ori_value", "ori_missing", "ori_list")[choice]
        if choice == 0:
            req["mid"] = 12345
        elif choice == 1:
            req["mid"] = "M" * 5000
        elif choice == 2:
            req["ori"] = "NOTANORI"
        elif choice == 3:
            req.pop("ori")
        else:
            req["ori"] = ["IL0000000"]
        return self._json(req, f"bad_{kind}", owed="any")
