"""A dead letter is bounded whatever arrives, states the sizes as received, and holds no
image data (switch/contract/deadletter.py)."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from switch.contract.deadletter import KEY_BYTES, RAW_BYTES, bounded_key, dead_letter
from switch.contract.messages import dead_letter_decoder, encode
from tests.contract.test_redact import FAST, assert_no_run_of, embed, images, shapes


def letter(key: bytes | None, value: bytes | None):  # type: ignore[no-untyped-def]
    return dead_letter("NOT UTF-8", topic="switch.requests", partition=2, offset=41,
                       key=key, value=value, ts="2026-12-03T00:00:00.000Z")


def test_a_400_kb_control_character_key_makes_a_small_letter() -> None:
    key = b"\x01" * 400_000  # each became "\\u0001" in JSON: a 2.4 MB letter before
    wire = encode(letter(key, b"\xff" * 3_000_000))
    assert len(wire) < 12 * 1024
    back = dead_letter_decoder.decode(wire)
    assert back.key_bytes == 400_000 and back.raw_bytes == 3_000_000
    assert back.key is not None and len(back.key) == KEY_BYTES
    assert len(back.raw) == RAW_BYTES
    assert back.reason == "NOT UTF-8" and (back.partition, back.offset) == (2, 41)


def test_no_key_and_no_value() -> None:
    back = letter(None, None)
    assert back.key is None and back.key_bytes is None and back.raw == b"" and back.raw_bytes == 0
    assert bounded_key(None) is None


def test_an_ordinary_letter_is_unchanged() -> None:
    back = letter(b"IL0160000", b"EIM.IL0160000.LNO/X17A4394.")
    assert back.key == "IL0160000" and back.raw == b"EIM.IL0160000.LNO/X17A4394."
    assert bounded_key(b"IL0160000") == b"IL0160000"


@FAST
@given(images, shapes, st.integers(0, 10_000))
def test_no_base64_window_of_an_image_survives_in_key_or_raw(image: bytes, shape: str, cut: int) -> None:
    raw = embed(image, shape, cut)
    back = letter(raw, raw)
    b64 = base64.b64encode(image)
    assert back.key is not None
    key_bytes = bounded_key(raw)
    assert key_bytes is not None and len(key_bytes) <= KEY_BYTES
    for where in (back.raw, back.key.encode(), key_bytes):
        if shape == "raw":
            assert_no_run_of(image, where, 16)
        else:
            assert_no_run_of(b64, where)
