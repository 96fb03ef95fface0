"""The web console in a real headless browser (Debian's Chromium driven by Playwright), against
a whole switch on the real broker. Takes a screenshot of the page; with UPDATE_SCREENSHOTS=1 it
replaces docs/web-console.png (not on every run: a test run should leave the worktree clean)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from switch.client import new_mid
from switch.web.server import WebConsole, WebOptions
from tests.flow.conftest import RunningSwitch, b64, photo

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "web-console.png"
HOPS = {("router", "received"), ("router", "routed"), ("leads", "answered"),
        ("ncic", "answered"), ("correlator", "replied")}


async def hops_shown(page: Page, cid: str, timeout: float = 20) -> set[tuple[str, str]]:
    """Search `cid` on the page until every hop is listed (the last audit entry may trail
    the reply by a moment); the hops shown."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        await page.fill("#q", cid)
        await page.click("#search button")
        await page.wait_for_selector(f"#results .txn[data-cid='{cid}'], #results .muted")
        rows = await page.eval_on_selector_all(
            f"#results .txn[data-cid='{cid}'] tr.hop",
            "rows => rows.map(r => [r.dataset.component, r.dataset.event])")
        shown = {(c, e) for c, e in rows}
        if shown >= HOPS or loop.time() > give_up:
            return shown
        await asyncio.sleep(0.3)


async def test_replies_photos_filters_and_trace_in_a_browser(switch: RunningSwitch, tmp_path: Path) -> None:
    assert shutil.which(CHROMIUM), "chromium is installed by `make install`"
    rec = switch.record("SOR", 2)
    async with WebConsole(switch.settings, WebOptions(port=0)) as web, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(web.url)
            await page.wait_for_function("document.getElementById('conn').textContent === 'live'")

            eim = await switch.client.request({
                "mke": "EIM", "mid": new_mid("eim"), "ori": rec.ori, "lno": rec.lno, "imt": "M",
                "doi": "20250110", "mis": "annual photo", "image": b64(photo())})
            assert eim.status == "COMPLETE", eim.text
            bad = await switch.client.request({
                "mke": "EIM", "mid": new_mid("bad"), "ori": rec.ori, "lno": rec.lno, "imt": "M",
                "doi": "20231345", "image": b64(photo())})
            assert bad.status == "REJECTED"
            qim = await switch.client.request({"mke": "QIM", "mid": new_mid("q"), "ori": rec.ori,
                                               "lno": rec.lno})
            assert qim.status == "COMPLETE" and len(qim.images) == 2

            for reply in (eim, bad, qim):
                await page.wait_for_selector(f".reply[data-mid='{reply.mid}']")
            q_sel = f".reply[data-mid='{qim.mid}']"
            assert "LEADS ACKNOWLEDGMENT EIM" in await page.inner_text(f".reply[data-mid='{eim.mid}']")
            # The photos are drawn: decoded by the browser, with a real size.
            await page.wait_for_function(
                f"""() => {{ const imgs = [...document.querySelectorAll("{q_sel} img.photo")];
                    return imgs.length === 2 && imgs.every(i => i.complete && i.naturalWidth > 0); }}""")
            widths = await page.eval_on_selector_all(f"{q_sel} img.photo",
                                                     "imgs => imgs.map(i => i.naturalWidth)")
            assert len(widths) == 2 and all(w > 0 for w in widths)
            # Counts by status come with the stats event, once a second.
            await page.wait_for_function("document.getElementById('count-COMPLETE').textContent === '2'"
                                         " && document.getElementById('count-REJECTED').textContent === '1'")

            # The chart: a point a second for the rate and the legs' latency, with numbers.
            await page.wait_for_function(
                "document.getElementById('now-p50').textContent !== '-'"
                " && document.querySelector('#chart-latency polyline').getAttribute('points')"
                ".split(' ').length >= 2")
            assert float(await page.inner_text("#now-p50")) > 0
            assert float(await page.get_attribute("#chart-rate", "data-max") or 0) >= 1

            # A filter by status hides the others, and showing all again brings them back.
            await page.select_option("#filter-status", "REJECTED")
            assert await page.is_visible(f".reply[data-mid='{bad.mid}']")
            assert not await page.is_visible(q_sel)
            assert not await page.is_visible(f".reply[data-mid='{eim.mid}']")
            await page.select_option("#filter-status", "")
            await page.fill("#filter-ori", "ZZ0000000")
            assert not await page.is_visible(q_sel)
            await page.fill("#filter-ori", rec.ori.lower())
            await page.select_option("#filter-mke", "QIM")
            assert await page.is_visible(q_sel)
            assert not await page.is_visible(f".reply[data-mid='{eim.mid}']")
            await page.fill("#filter-ori", "")
            await page.select_option("#filter-mke", "")

            # The QIM's trace: every hop, with its time.
            shown = await hops_shown(page, qim.cid)
            assert shown >= HOPS, shown
            assert "COMPLETE" in await page.inner_text(f"#results .txn[data-cid='{qim.cid}']")
            # Its manifest and each system's answer, with their times.
            box = f"#results .txn[data-cid='{qim.cid}']"
            await page.wait_for_selector(f"{box} .manifest")
            assert "legs LEADS,NCIC" in await page.inner_text(f"{box} .manifest")
            systems = await page.eval_on_selector_all(f"{box} tr.answer",
                                                      "rows => rows.map(r => r.dataset.system)")
            assert sorted(systems) == ["LEADS", "NCIC"], systems
            # Its OpenTelemetry trace id, shown, finds the same transaction.
            trace_id = await page.get_attribute(f"#results .txn[data-cid='{qim.cid}']", "data-trace")
            assert trace_id and len(trace_id) == 32, trace_id
            assert f"trace {trace_id}" in await page.inner_text(f"#results .txn[data-cid='{qim.cid}']")
            assert qim.cid in {t["cid"] for t in web.board.index.search(trace_id)}

            # A dead letter appears live, with its reason, and without its bytes.
            await switch.client.send(b"\xff\xfe not json: browser-junk", key="junk")
            await page.wait_for_selector("#deadletters .dl")
            letter = await page.inner_text("#deadletters .dl")
            assert "requests[" in letter and "browser-junk" not in letter
            assert not errors, errors
            shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / SCREENSHOT.name
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            await browser.close()
