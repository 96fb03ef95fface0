"""`switch demo`: the state bulletin's steps, walked for one sex-offender and one
VOAY/murderer record, each request shown in the text form with the switch's reply.

Steps and what must come back:
  query the record (no photo yet) -> enter the image (EIM) -> re-query: photo on both
  LEADS and NCIC (sex offender) or on LEADS alone (VOAY) -> modify (MII) -> cancel (XIM)
  -> enter again; then NCIC goes down (forwarding): an entry is PENDING with NCIC
  QUEUED, and once NCIC is back the supplement completes it.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TextIO

from PIL import Image, ImageDraw

from switch.client import SwitchClient, new_mid
from switch.contract.internal import RecordEntry
from switch.contract.messages import Control, Reply
from switch.contract.textform import parse_text
from switch.settings import Settings
from switch.terminal import paint

MAX_PROBES = 50


def mugshot(width: int = 1200, height: int = 1600, shade: int = 0) -> bytes:
    """A camera-sized JPEG portrait drawn with Pillow, so the switch has to size it."""
    im = Image.new("RGB", (width, height), (200 - shade, 205, 210))
    d = ImageDraw.Draw(im)
    cx, cy = width // 2, height // 2
    d.rectangle([0, int(height * 0.8), width, height], fill=(60, 70, 90))
    d.ellipse([cx - width // 4, cy - height // 4, cx + width // 4, cy + height // 6],
              fill=(222, 184, 150 + shade % 40))
    d.ellipse([cx - width // 8 - 30, cy - height // 12, cx - width // 8 + 30, cy - height // 12 + 40],
              fill=(40, 40, 40))
    d.ellipse([cx + width // 8 - 30, cy - height // 12, cx + width // 8 + 30, cy - height // 12 + 40],
              fill=(40, 40, 40))
    d.arc([cx - width // 10, cy + height // 24, cx + width // 10, cy + height // 10], 20, 160,
          fill=(120, 40, 40), width=8)
    for y in range(0, height, 9):  # a little texture, like a real photo
        d.line([(0, y), (width, y)], fill=(190 - shade, 195, 200 + (y % 5)), width=1) if y % 3 else None
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@dataclass
class Outcome:
    ok: bool
    why: str = ""


Check = Callable[[Reply], Outcome]


def expect(status: str, **legs: str) -> Check:
    def check(r: Reply) -> Outcome:
        problems = []
        if r.status != status:
            problems.append(f"status {r.status}, expected {status}")
        for system, want in legs.items():
            got = r.legs.get(system)
            if got is None or got.status != want:
                problems.append(f"{system} {got.status if got else 'missing'}, expected {want}")
        return Outcome(not problems, "; ".join(problems))
    return check


def images_from(*systems: str) -> Check:
    def check(r: Reply) -> Outcome:
        got = sorted({i.system for i in r.images})
        ok = r.status == "COMPLETE" and got == sorted(systems)
        return Outcome(ok, "" if ok else f"images from {got or 'no system'}, expected {list(systems)}")
    return check


class Demo:
    def __init__(self, settings: Settings, records: list[RecordEntry], out: TextIO = sys.stdout,
                 *, color: bool = False) -> None:
        self.settings = settings
        self.records = records
        self.out = out
        self.color = color
        self.steps = 0
        self.failed: list[str] = []

    def _c(self, code: str, text: str) -> str:
        return paint(text, code, color=self.color)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    async def step(self, client: SwitchClient, title: str, text: str, check: Check, *,
                   image: bytes | None = None) -> Reply:
        self.steps += 1
        req = parse_text(text, image=image, mid=new_mid("demo"), term="DEMO",
                         reply_prefix=self.settings.reply_prefix)
        self.say(self._c("1", f"\nSTEP {self.steps}. {title}"))
        shown = text + (f"  [+ image {len(image) // 1024} KB]" if image else "")
        self.say(f"  > {shown}")
        t0 = time.monotonic()
        reply = await client.request(req, timeout=max(30.0, self.settings.deadline_s * 3))
        self._show(reply, time.monotonic() - t0)
        result = check(reply)
        if result.ok:
            self.say(self._c("32", "  ok"))
        else:
            self.say(self._c("31", f"  UNEXPECTED: {result.why}"))
            self.failed.append(f"step {self.steps} ({title}): {result.why}")
        return reply

    def _show(self, r: Reply, secs: float) -> None:
        colour = {"COMPLETE": "32", "PENDING": "33", "PARTIAL": "33", "REJECTED": "31"}[r.status]
        self.say(f"  < {self._c(colour, r.status)}  cid {r.cid}  ({secs * 1000:.0f} ms)")
        for line in r.text.splitlines():
            self.say(f"    {line}")
        for img in r.images:
            self.say(f"    [{img.system} image IMN/{img.imn} IMT/{img.imt} DOI/{img.doi} "
                     f"{len(img.image) // 1024} KB{' RENEWAL DUE' if img.renewal_due else ''}]")

    async def _unused(self, client: SwitchClient, rtype: str, count: int) -> list[RecordEntry]:
        """Records of `rtype` with no image on file yet (a switch in use has some), found by
        quiet queries, so every step's expected outcome holds."""
        found: list[RecordEntry] = []
        for rec in [r for r in self.records if r.rtype == rtype][:MAX_PROBES]:
            req = parse_text(f"QIM.{rec.ori}.LNO/{rec.lno}.", mid=new_mid("probe"), term="DEMO",
                             reply_prefix=self.settings.reply_prefix)
            reply = await client.request(req, timeout=max(30.0, self.settings.deadline_s * 3))
            if reply.status == "COMPLETE" and not reply.images:
                found.append(rec)
                if len(found) == count:
                    return found
        raise RuntimeError(f"no {rtype} record without images among the first {MAX_PROBES}; "
                           "seed more records or use a fresh home")

    async def run(self) -> bool:
        doi = (date.today() - timedelta(days=3)).strftime("%Y%m%d")
        today = date.today().strftime("%Y%m%d")
        async with SwitchClient(self.settings) as client:
            sor, sor2 = await self._unused(client, "SOR", 2)
            (voay,) = await self._unused(client, "VOAY", 1)
            for rec, label in ((sor, "sex offender"), (voay, "VOAY/murderer")):
                both = rec.rtype == "SOR"
                self.say(self._c("1;36", f"\n=== {label.upper()} RECORD LNO/{rec.lno} "
                                         f"ORI/{rec.ori} NAM/{rec.nam} ==="))
                await self.step(client, "Query the record's images (none yet)",
                                f"QIM.{rec.ori}.LNO/{rec.lno}.",
                                expect("COMPLETE", LEADS="NOT_FOUND",
                                       NCIC="NOT_FOUND" if both else "SKIPPED"))
                enter = await self.step(
                    client, "Enter the mugshot (EIM); the switch sizes it into the boundary",
                    f"EIM.{rec.ori}.LNO/{rec.lno}.IMT/M.DOI/{doi}.MIS/ANNUAL PHOTO.",
                    expect("COMPLETE", LEADS="ACK", NCIC="ACK" if both else "SKIPPED"),
                    image=mugshot())
                imn = enter.legs["LEADS"].imn or "?"
                await self.step(client, "Re-query: the photo is attached to "
                                + ("BOTH the LEADS and the NCIC record" if both else "the LEADS record only"),
                                f"QIM.{rec.ori}.LNO/{rec.lno}.",
                                images_from("LEADS", "NCIC") if both else images_from("LEADS"))
                await self.step(client, "Modify the image data (MII)",
                                f"MII.{rec.ori}.IMN/{imn}.MIS/GLASSES SINCE LAST PHOTO.",
                                expect("COMPLETE", LEADS="ACK", NCIC="ACK" if both else "SKIPPED"))
                await self.step(client, "Cancel the image (XIM)",
                                f"XIM.{rec.ori}.IMN/{imn}.DOC/{today}.",
                                expect("COMPLETE", LEADS="ACK", NCIC="ACK" if both else "SKIPPED"))
                await self.step(client, "Enter a new photo after the cancel (EIM)",
                                f"EIM.{rec.ori}.LNO/{rec.lno}.IMT/M.DOI/{today}.",
                                expect("COMPLETE", LEADS="ACK", NCIC="ACK" if both else "SKIPPED"),
                                image=mugshot(shade=25))
            self.say(self._c("1;36", f"\n=== NCIC OUT OF SERVICE, WILL FORWARD (LNO/{sor2.lno}) ==="))
            await self._control(client, "NCIC", "down_forward")
            self.say("  NCIC set to down_forward (switch ctl NCIC down_forward)")
            text = f"EIM.{sor2.ori}.LNO/{sor2.lno}.IMT/M.DOI/{doi}."
            req = parse_text(text, image=mugshot(shade=10), mid=new_mid("demo"), term="DEMO",
                             reply_prefix=self.settings.reply_prefix)
            self.steps += 1
            self.say(self._c("1", f"\nSTEP {self.steps}. Enter while NCIC is down: LEADS answers, "
                                  "NCIC stays queued; NCIC comes back and a supplement completes it"))
            self.say(f"  > {text}  [+ image]")
            t0 = time.monotonic()
            wait = max(30.0, self.settings.deadline_s * 3)
            first = await client.request(req, timeout=wait)
            self._show(first, time.monotonic() - t0)
            first_ok = expect("PENDING", LEADS="ACK", NCIC="QUEUED")(first)
            await self._control(client, "NCIC", "up")
            self.say("  NCIC back up (switch ctl NCIC up); the queued entry is applied")
            sup = (await client.wait(req.mid, predicate=lambda r: r.supplement, timeout=wait))[0]
            self.say("  < supplement:")
            self._show(sup, time.monotonic() - t0)
            sup_ok = expect("COMPLETE", LEADS="ACK", NCIC="ACK")(sup)
            if sup.cid != first.cid:
                sup_ok = Outcome(False, "supplement has another cid")
            for result in (first_ok, sup_ok):
                if not result.ok:
                    self.failed.append(f"step {self.steps}: {result.why}")
            self.say(self._c("32", "  ok") if first_ok.ok and sup_ok.ok
                     else self._c("31", f"  UNEXPECTED: {first_ok.why} {sup_ok.why}"))
        return not self.failed

    async def _control(self, client: SwitchClient, system: str, mode: str) -> None:
        await client.control(Control(system=system, mode=mode))  # type: ignore[arg-type]
        await asyncio.sleep(1.0)  # the service applies it on its next poll
