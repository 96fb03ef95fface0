"""`switch submit`: send one request, wait for its reply, print it; the exit status says how it went."""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
from pathlib import Path
from typing import Any, TextIO

import msgspec
from aiokafka.errors import KafkaError

from switch.cli.common import settings_from_args
from switch.cli.exits import (
    NO_ANSWER,
    NOT_COMPLETE,
    OK,
    USAGE,
    UsageError,
    quiet_kafka_logs,
    unreachable,
)
from switch.client import SwitchClient, new_mid
from switch.console.images import save_images
from switch.console.render import clean, render_json, render_reply
from switch.console.state import First
from switch.console.topics_check import missing_message, missing_topics
from switch.contract.fields import check_mid, check_term
from switch.contract.messages import COMPLETE, PENDING, Reply
from switch.contract.textform import TextFormError, text_to_dict
from switch.contract.validate import ContractError, RequestInvalid, parse_request
from switch.settings import Settings
from switch.terminal import use_color

HELP = """\
Send one request to the switch, wait for its reply and print it: the header (time,
status, MKE, ORI, mid, cid), the systems' own lines, and one row per leg (status,
reject code, IMN, milliseconds); for a QIM one row per image.

INPUT is a JSON file holding one request (CONTRACT.md), a file holding the text form,
"-" for the text form on standard input, or the text form itself:
  EIM.IL0160000.LNO/X17A4394.IMT/M.DOI/20230216.MIS/ANNUAL PHOTO.
The image of an EIM or MII travels beside the text: --image FILE (JPEG or PNG) is read
and base64-encoded into the request (it also replaces a JSON file's image).

The request is checked here first, as the switch would check it, so a typo costs no
round trip (--no-check sends it as typed and lets the switch reject it). A reply that
is PENDING (a system is down and the entry is queued) can be followed to its
supplement with --wait-supplement.
"""

EPILOG = """\
examples:
  switch submit 'EIM.IL0160000.LNO/X17A4394.IMT/M.DOI/20230216.' --image photo.jpg
  switch submit 'QIM.IL0160000.LNO/X17A4394.' --save-images photos/
  switch submit 'MII.IL0160000.IMN/X17A4394M0.MIS/NEW GLASSES.' --term T42
  switch submit request.json --timeout 10 --json | jq .legs
  switch submit 'XIM.IL0160000.IMN/I000012345.DOC/20240301.' --wait-supplement

exit status: 0 the reply is COMPLETE; 1 it is PARTIAL, PENDING or REJECTED; 2 bad
arguments, an unreadable file or an invalid request; 3 Kafka unreachable or no reply
within --timeout (is `switch up` running?).
"""

IMAGE_KEYS = ("EIM", "MII")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "submit", parents=[common], help="send one request, wait for its reply and print it",
        description=HELP, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="FILE|TEXT",
                   help="a JSON request file, a text-form file, '-' (stdin), or the text form")
    p.add_argument("--image", metavar="FILE", type=Path,
                   help="the photo (JPEG or PNG) of an EIM or MII")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="seconds to wait for the reply, and again for a supplement (default 30)")
    p.add_argument("--mid", metavar="MID",
                   help="message id (default: the file's, else a new one); resending the same "
                        "mid and content gets the original reply, marked DUPLICATE")
    p.add_argument("--term", metavar="T", help="terminal or operator id, recorded in the audit")
    p.add_argument("--wait-supplement", action="store_true",
                   help="if the reply is PENDING, wait for the supplement that completes it; "
                        "the exit status then follows the supplement")
    p.add_argument("--no-check", action="store_true",
                   help="send the request as typed, without checking it first")
    p.add_argument("--save-images", metavar="DIR", type=Path,
                   help="write the images of a QIM reply to DIR/<IMN>-<SYSTEM>.jpg")
    p.add_argument("--json", action="store_true",
                   help="print the reply (and supplement) as JSON lines instead")
    p.add_argument("--no-color", action="store_true", help="never use colour")
    p.set_defaults(func=run)


# --------------------------------------------------------------------------- the request


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read it: {exc.strerror}") from None


def _from_text(text: str, image: bytes | None, mid: str | None, term: str | None) -> dict[str, Any]:
    try:
        return text_to_dict(text, image=image, mid=mid or new_mid("submit"), term=term)
    except TextFormError as exc:
        raise UsageError(f"not the text form MKE.ORI.CODE/VALUE.: {exc.reason}") from None


def build_request(
    source: str,
    *,
    image: Path | None = None,
    mid: str | None = None,
    term: str | None = None,
    stdin: TextIO | None = None,
) -> dict[str, Any]:
    """The wire object for the command line's INPUT and flags; raises UsageError."""
    if mid is not None and check_mid(mid) is not None:
        raise UsageError(f"--mid {mid!r}: {check_mid(mid)}")
    if term is not None and check_term(term) is not None:
        raise UsageError(f"--term {term!r}: {check_term(term)}")
    photo = _read(image, "--image") if image is not None else None
    path = Path(source)
    if source == "-":
        d = _from_text((stdin or sys.stdin).read(), photo, mid, term)
    elif path.is_file():
        raw = _read(path, "file")
        if raw.lstrip()[:1] == b"{":
            try:
                d = msgspec.json.decode(raw)
            except msgspec.DecodeError as exc:
                raise UsageError(f"{path}: not JSON: {exc}") from None
            if not isinstance(d, dict):
                raise UsageError(f"{path}: expected one JSON object")
            if mid is not None or "mid" not in d:
                d["mid"] = mid or new_mid("submit")
            if term is not None:
                d["term"] = term
            if photo is not None:
                d["image"] = base64.b64encode(photo).decode("ascii")
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"{path}: neither JSON nor UTF-8 text") from None
            d = _from_text(text, photo, mid, term)
    elif source.lower().endswith((".json", ".txt")):
        raise UsageError(f"{source}: no such file")
    else:
        d = _from_text(source, photo, mid, term)
    mke = str(d.get("mke") or "").upper()
    if photo is not None and mke not in IMAGE_KEYS:
        raise UsageError(f"--image goes with EIM or MII, not {mke or 'a request without MKE'}")
    return d


def check_request(d: dict[str, Any], settings: Settings) -> None:
    """Validate as the router will; raises UsageError with every problem on one line."""
    try:
        parse_request(msgspec.json.encode(d), reply_prefix=settings.reply_prefix,
                      max_bytes=settings.max_request_bytes)
    except RequestInvalid as exc:
        problems = "; ".join(e.text for e in exc.errors)
        hint = " (--image FILE)" if any(e.field == "image" and "MISSING" in e.text
                                        for e in exc.errors) else ""
        raise UsageError(f"invalid request: {problems}{hint}; --no-check sends it anyway") from None
    except ContractError as exc:
        raise UsageError(f"invalid request: {exc}") from None


# --------------------------------------------------------------------------- sending


def run(args: argparse.Namespace) -> int:
    quiet_kafka_logs()
    color = use_color(args.no_color, sys.stdout)
    return asyncio.run(execute(args, out=sys.stdout, err=sys.stderr, color=color))


async def execute(args: argparse.Namespace, *, out: TextIO, err: TextIO, color: bool = False) -> int:
    """The whole command, in-process: returns the exit status."""
    try:
        if args.timeout <= 0:
            raise UsageError("--timeout must be more than 0 seconds")
        d = build_request(args.input, image=args.image, mid=args.mid, term=args.term)
        settings = settings_from_args(args)
        if not args.no_check:
            check_request(d, settings)
    except UsageError as exc:
        err.write(f"switch submit: error: {exc}\n")
        return USAGE
    mid = str(d["mid"])
    try:
        missing = await missing_topics(settings, settings.requests_topic, settings.replies_topic)
    except (KafkaError, OSError) as exc:
        err.write(f"switch submit: error: {unreachable(settings, exc)}\n")
        return NO_ANSWER
    if missing:
        err.write(f"switch submit: error: {missing_message(settings, missing)}\n")
        return NO_ANSWER
    client = SwitchClient(settings)
    try:
        try:
            await client.start()
        except (KafkaError, OSError) as exc:
            err.write(f"switch submit: error: {unreachable(settings, exc)}\n")
            return NO_ANSWER
        try:
            async with asyncio.timeout(args.timeout):
                reply = await client.request(d, timeout=args.timeout)
        except TimeoutError:
            err.write(
                f"switch submit: error: no reply for mid {mid} within {args.timeout:g} s: is `switch up` "
                f"running (router and correlator on {settings.kafka.bootstrap_servers}, "
                f"topic prefix {settings.topics.prefix!r})?\n"
            )
            return NO_ANSWER
        except KafkaError as exc:
            err.write(f"switch submit: error: {unreachable(settings, exc)}\n")
            return NO_ANSWER
        _show(reply, args, out, err, color=color)
        final = reply
        if args.wait_supplement and reply.status == PENDING:
            got = await _supplements(client, reply, args, out, err, color=color)
            if got is None:
                return NO_ANSWER
            final = got
    finally:
        await client.stop()
    return OK if final.status == COMPLETE else NOT_COMPLETE


async def _supplements(
    client: SwitchClient, first: Reply, args: argparse.Namespace, out: TextIO, err: TextIO,
    *, color: bool,
) -> Reply | None:
    """Print supplements until one is no longer PENDING; None on timeout."""
    mid = str(first.mid)
    seen = 0
    while True:
        try:
            sups = await client.wait(mid, count=seen + 1, timeout=args.timeout,
                                     predicate=lambda r: r.supplement and r.cid == first.cid)
        except TimeoutError:
            err.write(
                f"switch submit: error: no supplement for mid {mid} within {args.timeout:g} s; "
                "the entry stays queued: is the system back up (`switch ctl NCIC up`)?\n"
            )
            return None
        for sup in sups[seen:]:
            _show(sup, args, out, err, color=color, first=First(mid=first.mid, status=first.status))
        seen = len(sups)
        if sups[-1].status != PENDING:
            return sups[-1]


def _show(reply: Reply, args: argparse.Namespace, out: TextIO, err: TextIO, *, color: bool,
          first: First | None = None) -> None:
    saved = {}
    if args.save_images is not None and reply.images:
        try:
            saved = save_images(reply, args.save_images)
        except OSError as exc:
            err.write(f"switch submit: cannot save images in {args.save_images}: {exc}\n")
    if args.json:
        out.write(render_json(reply) + "\n")
    else:
        out.write(render_reply(reply, color=color, first=first, saved=saved) + "\n")
    out.flush()
    if reply.duplicate and not args.json:
        err.write(f"switch submit: mid {clean(reply.mid)} was sent before; this is the original reply\n")
