"""The traffic file: JSON lines written by `switch gen` and `switch capture`, read by
`switch replay`. Pure; no Kafka.

One JSON object per line, told apart by `kind`, in this order:

    {"kind":"header","version":1,"source":"gen","params":{...}}          first line, once
    {"kind":"image","id":"j30k-2","data":"<base64 JPEG>","size":30712}   zero or more
    {"kind":"step","id":"s000017","request":{...},"depends_on":"s000009"} one per request

A step is one request, sent as its `request` object with two kinds of placeholder
filled in at send time:
- `"image": "$img:<image-id>"`: the image of that `image` line (stored once, used by
  many requests, so a file of 30 KB photos stays small);
- `"imn": "$imn:<step-id>"`: the IMN the reply to that earlier step returned (an EIM).
Replay makes every `mid` unique per run by appending `.<run-id>`, so one file can be
replayed many times. Other step fields (all optional):
- `raw`: instead of `request`, base64 of bytes sent as they are (garbage input);
  `raw_mid` names the mid written inside them, made unique like any mid.
- `depends_on`: the step whose reply must have arrived before this one is sent (the
  previous step of the same operator's session). A step is also implicitly dependent
  on every step its placeholders name.
- `expect_reply`: false for input the switch cannot answer (no readable mid or ORI):
  it only reaches the dead-letter topic.
- `key`: the Kafka key (default: the request's `ori`); gen uses the record's LNO so one
  record's requests stay in order.
- `tag`: `valid`, `invalid:<kind>` (gen) or `captured` (capture).
- `t`: seconds after the first step (capture: the original send times).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec

from switch.errors import SwitchError

VERSION = 1
IMG_PREFIX = "$img:"
IMN_PREFIX = "$imn:"


class TrafficError(SwitchError):
    """A traffic file that cannot be read; the message names the line."""


class Header(msgspec.Struct, kw_only=True, tag="header", tag_field="kind", omit_defaults=True):
    version: int = VERSION
    source: str = "gen"
    params: dict[str, Any] = {}


class ImageLine(msgspec.Struct, kw_only=True, tag="image", tag_field="kind", omit_defaults=True):
    id: str
    data: str  # base64 text, kept as text: replay puts it into requests as it is
    size: int = 0  # bytes of the image itself
    width: int = 0
    height: int = 0


class Step(msgspec.Struct, kw_only=True, tag="step", tag_field="kind", omit_defaults=True):
    id: str
    request: dict[str, Any] | None = None
    raw: bytes | None = None
    raw_mid: str | None = None
    depends_on: str | None = None
    expect_reply: bool = True
    key: str | None = None
    tag: str = "valid"
    t: float | None = None

    @property
    def mke(self) -> str:
        """The MKE for statistics: the request's, or RAW for bytes sent as they are."""
        if self.request is not None:
            mke = self.request.get("mke")
            if isinstance(mke, str) and mke in ("EIM", "MII", "XIM", "QIM"):
                return mke
            return "OTHER"
        return "RAW"

    @property
    def mid(self) -> str | None:
        if self.request is not None:
            mid = self.request.get("mid")
            return mid if isinstance(mid, str) else None
        return self.raw_mid

    def references(self) -> list[str]:
        """Step ids named by `$imn:` placeholders."""
        if self.request is None:
            return []
        imn = self.request.get("imn")
        if isinstance(imn, str) and imn.startswith(IMN_PREFIX):
            return [imn[len(IMN_PREFIX):]]
        return []

    def dependencies(self) -> list[str]:
        """Every step that must be answered before this one is sent."""
        deps = self.references()
        if self.depends_on is not None and self.depends_on not in deps:
            deps.append(self.depends_on)
        return deps


Line = Header | ImageLine | Step
_decoder = msgspec.json.Decoder(Line)
_encoder = msgspec.json.Encoder()


@dataclass
class Traffic:
    header: Header
    images: dict[str, str] = field(default_factory=dict)  # id -> base64 text
    steps: list[Step] = field(default_factory=list)

    def image_lines(self) -> Iterator[ImageLine]:
        for image_id, data in self.images.items():
            yield ImageLine(id=image_id, data=data, size=len(data) * 3 // 4)


def encode_line(line: Line) -> bytes:
    return _encoder.encode(line) + b"\n"


def write_lines(out: IO[bytes], header: Header, images: Iterable[ImageLine], steps: Iterable[Step]) -> int:
    """Write a traffic file; returns the number of steps written."""
    out.write(encode_line(header))
    for image in images:
        out.write(encode_line(image))
    n = 0
    for step in steps:
        out.write(encode_line(step))
        n += 1
    return n


def write_traffic(path: str | Path, traffic: Traffic, images: Iterable[ImageLine] | None = None) -> int:
    with open(path, "wb") as f:
        return write_lines(f, traffic.header,
                           images if images is not None else traffic.image_lines(), traffic.steps)


def read_traffic(path: str | Path) -> Traffic:
    """Read and check a traffic file: header first, images before the steps using them,
    unique step ids, placeholders and dependencies naming earlier steps."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; a clear error when missing
    except OSError as exc:
        raise TrafficError(f"cannot read traffic file {path}: {exc.strerror}") from None
    with f:
        return parse_lines(f, str(path))


def parse_lines(lines: Iterable[bytes], name: str = "<traffic>") -> Traffic:
    header: Header | None = None
    traffic: Traffic | None = None
    seen: set[str] = set()
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            line = _decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise TrafficError(f"{name}:{number}: not a traffic line: {exc}") from None
        if header is None:
            if not isinstance(line, Header):
                raise TrafficError(f"{name}:{number}: the first line must be the header")
            if line.version != VERSION:
                raise TrafficError(f"{name}:{number}: traffic version {line.version}, "
                                   f"this replay reads version {VERSION}")
            header = line
            traffic = Traffic(header)
            continue
        assert traffic is not None
        if isinstance(line, Header):
            raise TrafficError(f"{name}:{number}: a second header")
        if isinstance(line, ImageLine):
            traffic.images[line.id] = line.data
            continue
        if line.id in seen:
            raise TrafficError(f"{name}:{number}: step id {line.id!r} used twice")
        if (line.request is None) == (line.raw is None):
            raise TrafficError(f"{name}:{number}: a step has either `request` or `raw`")
        for dep in line.dependencies():
            if dep not in seen:
                raise TrafficError(f"{name}:{number}: step {line.id} depends on {dep!r}, "
                                   "which is not an earlier step")
        image = line.request.get("image") if line.request else None
        if isinstance(image, str) and image.startswith(IMG_PREFIX) \
                and image[len(IMG_PREFIX):] not in traffic.images:
            raise TrafficError(f"{name}:{number}: step {line.id} uses image "
                               f"{image[len(IMG_PREFIX):]!r}, not defined before it")
        seen.add(line.id)
        traffic.steps.append(line)
    if traffic is None:
        raise TrafficError(f"{name}: empty traffic file (no header)")
    return traffic
