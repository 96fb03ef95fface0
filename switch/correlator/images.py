"""A finished reply's images, kept once by content (pure: no I/O).

A duplicate request is answered with the original reply, images included (CONTRACT.md:
"the switch answers with the original reply"), for the whole mid retention (24 h). Kept
inline, every QIM reply's photos were stored again with each reply: ~7.8 KB a reply, 1.68 GB
an hour at 60 requests/s, though the same few photos of a record came back in every query
of it (and once per system: LEADS and NCIC hold the same bytes).

So a finished reply is kept without its image bytes, each image named by its SHA-256
(`Finished.images`, in the reply's order), and each image's bytes are kept once per
changelog partition under the key `~image:<sha256>` (the raw JPEG bytes, not base64). A
duplicate gets the reply joined again, byte for byte the original's images. The images
kept are bounded by what the systems of record held in the retention window, not by the
number of queries.
"""

from __future__ import annotations

import hashlib

import msgspec

from switch.contract.messages import Reply, encode, reply_decoder

IMAGE_KEY_PREFIX = "~image:"


def image_key(digest: str) -> str:
    return IMAGE_KEY_PREFIX + digest


def digest_of_key(key: str) -> str | None:
    """The SHA-256 of an image record's key, else None (a cid or the checkpoint)."""
    return key[len(IMAGE_KEY_PREFIX):] if key.startswith(IMAGE_KEY_PREFIX) else None


def split(reply: bytes) -> tuple[bytes, list[str], dict[str, bytes]] | None:
    """The encoded reply without its image bytes, the digest of each image in order, and
    the bytes by digest; None when the reply has no image (kept as it is)."""
    r = reply_decoder.decode(reply)
    if not any(im.image for im in r.images):
        return None
    digests: list[str] = []
    blobs: dict[str, bytes] = {}
    for im in r.images:
        d = hashlib.sha256(im.image).hexdigest()
        digests.append(d)
        blobs[d] = im.image
    slim = msgspec.structs.replace(
        r, images=[msgspec.structs.replace(im, image=b"") for im in r.images])
    return encode(slim), digests, blobs


def join(slim: bytes, digests: list[str], blobs: dict[str, bytes]) -> Reply:
    """The reply `split` took apart. An image whose bytes are missing (never expected:
    they outlive every reply naming them) stays empty."""
    r = reply_decoder.decode(slim)
    if len(digests) != len(r.images):
        return r
    return msgspec.structs.replace(r, images=[
        msgspec.structs.replace(im, image=blobs.get(d, b""))
        for im, d in zip(r.images, digests, strict=True)])
