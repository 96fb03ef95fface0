"""Cheap checks on the raw bytes, before any pixel is decoded.

`inspect` reads only headers: the signature, the JPEG marker segments up to the first
scan, or the PNG chunk list. It rejects what can be told from there (wrong format,
oversize bytes or dimensions, an animation, a cut-off PNG, a decode that would need more
memory than the budget) and says whether a JPEG's headers already conform, in which case
the pipeline decodes it once to check its data and then stores it as it is.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from switch.images.errors import invalid, too_large
from switch.settings import ImageSettings

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"

# Named only so that a rejection can say what was sent; none of these is ever decoded.
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"%PDF", "PDF"),
)

# Start-of-frame markers: every C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_SOF_BASELINE = 0xC0
_DHT, _DQT, _DRI, _SOS, _APP0, _COM = 0xC4, 0xDB, 0xDD, 0xDA, 0xE0, 0xFE
# Inside entropy-coded data 0xFF is followed only by a stuffed 0x00 or a restart marker,
# so the first other 0xFF xx is the next marker.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_NOT_FF = re.compile(rb"[^\xff]")
_EOI = b"\xff\xd9"
_JFIF_APP0_LENGTH = 16  # "JFIF\0", version, units, densities, and a 0 x 0 thumbnail

# Lists longer than these are hostile (real files have tens of JPEG header segments and,
# with 8 KiB IDAT chunks, about 1300 PNG chunks at the byte limit) and would only make
# this walk, and Pillow's own walk in Python, slow.
MAX_JPEG_SEGMENTS = 1_000
MAX_PNG_CHUNKS = 10_000


@dataclass(frozen=True, slots=True)
class Header:
    """What the headers say. `conforming`: a JPEG that may be stored byte for byte."""

    format: str
    width: int
    height: int
    conforming: bool = False
    progressive: bool = False
    decode_bytes: int = 0  # peak memory the decode and conversion need (decode_bytes())


def inspect(data: bytes, settings: ImageSettings) -> Header:
    """Read the headers of `data`; raise ImageRejected for what they already rule out."""
    if len(data) > settings.max_input_bytes:
        raise too_large(f"{len(data)} BYTES EXCEEDS {settings.max_input_bytes}")
    allowed = " OR ".join(settings.allowed_formats)
    fmt = sniff(data)
    if fmt not in ("JPEG", "PNG") or fmt not in settings.allowed_formats:
        raise invalid(f"{fmt}, NOT A {allowed}" if fmt else f"NOT A {allowed}")
    header = _jpeg_header(data, settings) if fmt == "JPEG" else _png_header(data, settings)
    check_decode_bytes(header, settings)
    return header


def check_decode_bytes(header: Header, settings: ImageSettings) -> None:
    """Refuse, before any pixel is decoded, an image whose decode would exceed the budget."""
    if header.decode_bytes > settings.max_decode_bytes:
        raise too_large(
            f"{header.width} X {header.height} PIXELS WOULD NEED {_mib(header.decode_bytes)} MB"
            f" TO DECODE, OVER THE {_mib(settings.max_decode_bytes)} MB LIMIT"
        )


def _mib(n: int) -> int:
    return _ceil_div(n, 1024 * 1024)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def sniff(data: bytes) -> str | None:
    """The format named by the leading bytes, or None."""
    if data.startswith(JPEG_SIGNATURE):
        return "JPEG"
    if data.startswith(PNG_SIGNATURE):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        return "AVIF" if data[8:12] in (b"avif", b"avis") else "HEIF"
    for signature, name in _OTHER_SIGNATURES:
        if data.startswith(signature):
            return name
    return None


def check_dimensions(width: int, height: int, settings: ImageSettings) -> None:
    if width <= 0 or height <= 0:
        raise invalid(f"{width} X {height} PIXELS, EMPTY IMAGE")
    if width * height > settings.max_input_pixels:
        raise too_large(f"{width} X {height} PIXELS EXCEEDS {settings.max_input_pixels}")
    if max(width, height) > settings.max_input_side:
        raise too_large(f"{width} X {height} PIXELS, A SIDE EXCEEDS {settings.max_input_side}")


# --------------------------------------------------------------------------- JPEG


def _jpeg_header(data: bytes, settings: ImageSettings) -> Header:
    """Walk the marker segments from SOI to the first SOS."""
    n = len(data)
    pos = 2
    frame: bytes | None = None
    sof = -1
    scan: bytes | None = None
    quant_tables: set[int] = set()
    huffman_tables: set[tuple[int, int]] = set()
    clean = True  # nothing but tables, a bare JFIF APP0, one frame and one scan
    jfif = False
    segments = 0
    while scan is None:
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise invalid(f"JPEG HAS MORE THAN {MAX_JPEG_SEGMENTS} HEADER SEGMENTS")
        if pos >= n or data[pos] != 0xFF:
            raise invalid("TRUNCATED JPEG HEADER" if pos >= n else "MALFORMED JPEG HEADER")
        fill = _NOT_FF.search(data, pos)  # skip fill bytes
        pos = fill.start() if fill else n
        if pos + 3 > n:
            raise invalid("TRUNCATED JPEG HEADER")
        marker = data[pos]
        if marker in (0xD8, 0xD9) or marker == 0x00:
            raise invalid("MALFORMED JPEG HEADER")
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # stand-alone, no length
            clean = False
            pos += 1
            continue
        length = (data[pos + 1] << 8) | data[pos + 2]
        start, end = pos + 3, pos + 1 + length
        if length < 2:
            raise invalid("MALFORMED JPEG HEADER")
        if end > n:
            raise invalid("TRUNCATED JPEG HEADER")
        segment = data[start:end]
        if marker in _SOF_MARKERS:
            if frame is not None:
                raise invalid("MORE THAN ONE JPEG FRAME HEADER")
            if len(segment) < 6 or len(segment) < 6 + 3 * segment[5]:
                raise invalid("MALFORMED JPEG FRAME HEADER")
            frame, sof = segment, marker
            height, width = struct.unpack_from(">HH", frame, 1)
            if height == 0:
                raise invalid("JPEG HEIGHT NOT IN FRAME HEADER")
            check_dimensions(width, height, settings)  # before reading any further
        elif marker == _SOS:
            scan = segment
        elif marker == _DQT:
            clean = clean and _read_dqt(segment, quant_tables)
        elif marker == _DHT:
            clean = clean and _read_dht(segment, huffman_tables)
        elif marker == _APP0 and not jfif and _is_bare_jfif(segment):
            jfif = True
        elif marker != _DRI:
            clean = False  # metadata (APPn, COM) or something exotic
        pos = end
    if frame is None:
        raise invalid("JPEG HAS NO FRAME HEADER")
    height, width = struct.unpack_from(">HH", frame, 1)
    progressive = sof in _PROGRESSIVE_SOF
    buffered = progressive or count_scans(data) > 1
    need = jpeg_decode_bytes(width, height, _sampling(frame), buffered, settings)
    header = Header("JPEG", width, height, progressive=progressive, decode_bytes=need)
    if not (
        clean
        and sof == _SOF_BASELINE
        and width <= settings.box_width
        and height <= settings.box_height
        and len(data) <= settings.max_output_bytes
        and _baseline_frame_and_scan(frame, scan, jfif, quant_tables, huffman_tables)
        and _entropy_data_ends_at_eoi(data, pos)
    ):
        return header
    return Header("JPEG", width, height, conforming=True, decode_bytes=need)


def _sampling(frame: bytes) -> list[tuple[int, int]]:
    """Each component's (horizontal, vertical) sampling factors, from the frame header."""
    count = frame[5]
    return [(frame[7 + 3 * k] >> 4, frame[7 + 3 * k] & 0x0F) for k in range(count)]


# --------------------------------------------------------------------------- memory budget
#
# What Pillow allocates, per pixel, for the image in each mode (RGB, RGBA, LA, CMYK and
# YCbCr take 4 bytes a pixel; L, P and "1" one; I;16 two; I four), and which copies
# pipeline.decode_fitted and colour.to_srgb keep alive at the same time. For example a
# palette PNG with transparency: P (1) + convert("RGBA") (4) + the white background (4) +
# the RGBA's convert("RGB") (4) + its alpha band (1) = 14 bytes a pixel, so 560 MB for
# 40 MP, which is what was measured. The final resize to the box is small and not counted.


def draft_scale(width: int, height: int, box: tuple[int, int]) -> int:
    """The smallest scale (1, 2, 4 or 8) libjpeg may decode at in decode_fitted.

    Pillow's draft picks the largest of 8, 4, 2 that keeps the image at least the target
    size. The target depends on the EXIF orientation, which the headers checked here do
    not read, so both orientations are tried and the less favourable scale is taken.
    """
    scales = []
    for target in (fit((width, height), box), _swap(fit((height, width), box))):
        ratio = min(width // target[0], height // target[1])
        scales.append(next(s for s in (8, 4, 2, 1) if ratio >= s))
    return min(scales)


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest size inside `box` with the aspect of `size`; never larger than `size`."""
    (w, h), (bw, bh) = size, box
    if w <= bw and h <= bh:
        return w, h
    if w * bh >= h * bw:  # width decides
        return bw, max(1, min(bh, (2 * h * bw + w) // (2 * w)))
    return max(1, min(bw, (2 * w * bh + h) // (2 * h))), bh


def _swap(size: tuple[int, int]) -> tuple[int, int]:
    return size[1], size[0]


def jpeg_decode_bytes(
    width: int,
    height: int,
    sampling: list[tuple[int, int]],
    buffered: bool,
    settings: ImageSettings,
) -> int:
    """Peak bytes to decode and convert a JPEG of these dimensions.

    Decoded at the draft scale: 1 byte a pixel for greyscale (x6: an ICC transform makes an
    RGB copy, then L again), 4 for colour (x2: the turned or colour-managed copy beside it).
    A progressive or multi-scan file also holds every DCT coefficient of the full-size image
    (2 bytes each, 64 per 8 x 8 block of each component), whatever the draft scale.
    """
    scale = draft_scale(width, height, (settings.box_width, settings.box_height))
    pixels = _ceil_div(width, scale) * _ceil_div(height, scale)
    need = pixels * (6 if len(sampling) == 1 else 8)
    if buffered and sampling:
        hmax = max(h for h, _ in sampling) or 1
        vmax = max(v for _, v in sampling) or 1
        for h, v in sampling:
            cols = _ceil_div(_ceil_div(width * h, hmax), 8)
            rows = _ceil_div(_ceil_div(height * v, vmax), 8)
            need += cols * rows * 64 * 2
    return need


# PNG colour type -> (decoded bytes a pixel, peak bytes a pixel without tRNS, with tRNS).
_PNG_PEAK = {
    0: (1, 1, 8),  # L; with tRNS: L + LA + background + L copy + alpha
    2: (4, 4, 17),  # RGB; with tRNS: RGB + RGBA + background + RGB copy + alpha
    3: (1, 5, 14),  # P + RGB; with tRNS: P + RGBA + background + RGB copy + alpha
    4: (4, 7, 7),  # LA + background + L copy + alpha
    6: (4, 13, 13),  # RGBA + background + RGB copy + alpha
}


def png_decode_bytes(
    width: int, height: int, colour_type: int, bit_depth: int, *, trns: bool, iccp: bool
) -> int:
    """Peak bytes to decode and convert a PNG of these dimensions (no draft mode for PNG).

    16-bit greyscale is read as I;16 and scaled through two mode-I images (2 + 4 + 4 + 1);
    a 1-bit one as "1" then L. An ICC profile adds the transform's RGB output (and an L
    copy); an eXIf orientation a turned copy of the decoded image, before conversion.
    """
    decoded, plain, with_trns = _PNG_PEAK.get(colour_type, (4, 17, 17))
    peak = with_trns if trns else plain
    if colour_type == 0 and bit_depth == 16:
        decoded, peak = 2, 11
    elif colour_type == 0 and bit_depth == 1 and not trns:
        peak = 2
    peak = max(peak + (5 if iccp else 0), 2 * decoded)
    return width * height * peak


def _is_bare_jfif(segment: bytes) -> bool:
    return len(segment) + 2 == _JFIF_APP0_LENGTH and segment.startswith(b"JFIF\x00")


def _read_dqt(segment: bytes, tables: set[int]) -> bool:
    i = 0
    while i < len(segment):
        precision, table = segment[i] >> 4, segment[i] & 0x0F
        if precision != 0 or table > 3:
            return False  # 16-bit tables are not baseline
        tables.add(table)
        i += 65
    return i == len(segment)


def _read_dht(segment: bytes, tables: set[tuple[int, int]]) -> bool:
    i = 0
    while i + 17 <= len(segment):
        kind, table = segment[i] >> 4, segment[i] & 0x0F
        if kind > 1 or table > 1:
            return False  # baseline has two tables of each kind
        tables.add((kind, table))
        i += 17 + sum(segment[i + 1 : i + 17])
    return i == len(segment)


def _baseline_frame_and_scan(
    frame: bytes,
    scan: bytes,
    jfif: bool,
    quant_tables: set[int],
    huffman_tables: set[tuple[int, int]],
) -> bool:
    """8-bit greyscale or YCbCr in a single interleaved scan, every table defined."""
    precision, count = frame[0], frame[5]
    if precision != 8 or count not in (1, 3) or len(frame) != 6 + 3 * count:
        return False
    ids = []
    for k in range(count):
        cid, sampling, table = frame[6 + 3 * k : 9 + 3 * k]
        if not (1 <= sampling >> 4 <= 4 and 1 <= sampling & 0x0F <= 4):
            return False
        if table not in quant_tables:
            return False
        ids.append(cid)
    if count == 3 and not jfif and ids != [1, 2, 3]:
        return False  # might be read as RGB or YCbCr depending on the decoder
    if not scan or scan[0] != count or len(scan) != 4 + 2 * count:
        return False
    for k in range(count):
        cid, tables = scan[1 + 2 * k], scan[2 + 2 * k]
        if cid != ids[k]:
            return False
        if (0, tables >> 4) not in huffman_tables or (1, tables & 0x0F) not in huffman_tables:
            return False
    return scan[-3:] == b"\x00\x3f\x00"  # Ss 0, Se 63, Ah Al 0: sequential


def _entropy_data_ends_at_eoi(data: bytes, start: int) -> bool:
    """The scan's data runs to EOI, the file's last two bytes, with no marker between."""
    end = len(data) - 2
    if end <= start or not data.endswith(_EOI):
        return False
    m = _NEXT_MARKER.search(data, start)
    return m is not None and m.start() == end


def count_scans(data: bytes) -> int:
    """SOS markers in the file (0xFF 0xDA cannot occur inside entropy-coded data)."""
    return data.count(b"\xff\xda")


# --------------------------------------------------------------------------- PNG


def _png_header(data: bytes, settings: ImageSettings) -> Header:
    """IHDR's dimensions, checked, then the chunk list walked to IEND."""
    n = len(data)
    if n < 33 or data[12:16] != b"IHDR":
        raise invalid("TRUNCATED PNG HEADER" if n < 33 else "MALFORMED PNG HEADER")
    width, height = struct.unpack_from(">II", data, 16)
    check_dimensions(width, height, settings)
    bit_depth, colour_type = data[24], data[25]
    pos = 8
    chunks = 0
    seen_idat = trns = iccp = False
    while True:
        if pos + 12 > n:
            raise invalid("TRUNCATED PNG")
        length, kind = struct.unpack_from(">I4s", data, pos)
        if length > 0x7FFFFFFF:
            raise invalid("MALFORMED PNG CHUNK")
        if kind == b"IEND":
            break
        if kind == b"IDAT":
            seen_idat = True
        elif kind == b"tRNS":
            trns = True
        elif kind == b"iCCP":
            iccp = True
        elif kind in (b"acTL", b"fcTL", b"fdAT"):
            raise invalid("ANIMATED PNG")
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise invalid(f"PNG HAS MORE THAN {MAX_PNG_CHUNKS} CHUNKS")
        pos += 12 + length
    if not seen_idat:
        raise invalid("PNG HAS NO IMAGE DATA")
    need = png_decode_bytes(width, height, colour_type, bit_depth, trns=trns, iccp=iccp)
    return Header("PNG", width, height, decode_bytes=need)
