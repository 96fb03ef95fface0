"""`switch report`: reports read straight from the stores under SWITCH_HOME (no Kafka)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import replace
from datetime import date, datetime
from typing import TextIO

from services.renewals import RenewalReport, ReportError, renewal_report
from switch.cli.common import settings_from_args
from switch.cli.exits import OK, USAGE

HELP = """\
Reports read from the stores under SWITCH_HOME (--home), without Kafka; a store can be
read while the switch runs (read-only).

  renewals   records whose mugshot (IMT M) is missing, or due for renewal under the
             annual rule: the active mugshot's DOI is more than 365 days before today.
             One line per record (LNO, record type, owner ORI, name, the current
             photo's DOI and IMN or NO PHOTO), oldest first within each ORI, then a
             summary line with the counts. Read from the LEADS store, which holds
             every record (sex offender and VOAY/murderer).
"""

EPILOG = """\
examples:
  switch report renewals
  switch report renewals --ori IL0160000
  switch report renewals --json | jq '.records[] | select(.reason == "DUE") | .imn'
  switch report renewals --today 20250301      # as of another date

exit status: 0 done; 2 bad arguments or no store (run `switch seed` or `switch up`).
"""

_ORI = re.compile(r"[A-Z]{2}[A-Z0-9]{7}")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "report", parents=[common], help="reports from the stores (renewals due), no Kafka needed",
        description=HELP, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("report", choices=("renewals",), help="which report")
    p.add_argument("--ori", metavar="ORI", help="only records owned by this agency, e.g. IL0160000")
    p.add_argument("--only", choices=("missing", "due"),
                   help="list only records with no photo (missing) or only those due")
    p.add_argument("--today", metavar="CCYYMMDD", help="report as of this date (default: today, UTC)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object: today, cutoff, summary counts and the records")
    p.set_defaults(func=run)


def _today(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"--today {text!r}: expected a date CCYYMMDD, e.g. 20250301") from None


def run(args: argparse.Namespace) -> int:
    return execute(args, out=sys.stdout, err=sys.stderr)


def execute(args: argparse.Namespace, *, out: TextIO, err: TextIO, today: date | None = None) -> int:
    """The command in-process; `today` (else --today, else the UTC date) fixes the cut."""
    ori = args.ori.strip().upper() if args.ori else None
    if ori is not None and not _ORI.fullmatch(ori):
        err.write(f"switch report: error: --ori {args.ori!r}: 9 characters, a 2-letter state code "
                  "and 7 letters or digits, e.g. IL0160000\n")
        return USAGE
    try:
        today = today or _today(args.today)
    except ValueError as exc:
        err.write(f"switch report: error: {exc}\n")
        return USAGE
    settings = settings_from_args(args)
    try:
        report = renewal_report(settings, today=today, ori=ori)
    except ReportError as exc:
        err.write(f"switch report: error: {exc}\n")
        return USAGE
    if args.only:
        wanted = "NO PHOTO" if args.only == "missing" else "DUE"
        report = _only(report, wanted)
    if args.json:
        out.write(json.dumps(report.to_dict()) + "\n")
    else:
        out.write(format_renewals(report))
    return OK


def _only(report: RenewalReport, reason: str) -> RenewalReport:
    return replace(report, items=[i for i in report.items if i.reason == reason])


def format_renewals(report: RenewalReport) -> str:
    """The text report: a title, a table, a summary line."""
    lines = [
        f"Mugshots missing or due for renewal, LEADS store, as of {report.today:%Y-%m-%d} "
        f"(due: DOI before {report.cutoff}, more than {report.renewal_days} days old)"
        + (f", ORI {report.ori}" if report.ori else ""),
    ]
    if report.items:
        lines.append(f"{'LNO':<9} {'TYPE':<5} {'ORI':<10} {'NAME':<31} PHOTO")
    for r in report.items:
        photo = "NO PHOTO" if r.doi is None else f"DOI/{r.doi} IMN/{r.imn} DUE ({r.days_old} days old)"
        lines.append(f"{r.lno:<9} {r.rtype:<5} {r.ori:<10} {(r.nam or '-'):<31} {photo}")
    lines.append(
        f"switch report renewals: {report.records} records, {report.no_photo} with no photo, "
        f"{report.due} due for renewal, {report.current} current"
        + (f" (listed: {len(report.items)})" if len(report.items) != report.no_photo + report.due else "")
    )
    return "\n".join(lines) + "\n"
