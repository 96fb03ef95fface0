"""The router's record directory: the image-owner map kept out of the router's memory."""

from __future__ import annotations

from pathlib import Path

from switch.contract.internal import RecordEntry
from switch.router.directory import Directory

SOR = RecordEntry(lno="X17A4394", rtype="SOR", ori="IL0160000", nic="X123456782",
                  nam="DOE, JOHN", sex="M", dob="19800101")


def test_image_owner_noted_replaced_and_forgotten() -> None:
    d = Directory()
    d.put(SOR)
    assert d.lno_of_imn("I100000007") is None
    d.note_image("I100000007", SOR.lno)
    assert d.lno_of_imn("I100000007") == SOR.lno
    d.note_image("I100000007", "Y0000001")  # re-entered on another record: the last wins
    assert d.lno_of_imn("I100000007") == "Y0000001"
    d.forget_image("I100000007")
    assert d.lno_of_imn("I100000007") is None
    assert d.images_noted() == 0
    assert d.by_lno(SOR.lno) == SOR and d.by_nic(SOR.nic or "") == SOR


def _rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def test_image_owner_map_does_not_grow_the_router_memory() -> None:
    """150,000 shared IMNs (four hours of the soak's load) held in a dict took ~22 MiB
    (143 B each, measured in the soak); the map's pages beyond its small cache go to disk."""
    d = Directory()
    before = _rss_mib()
    for n in range(150_000):
        d.note_image(f"I{n % 10}{n:08d}", f"L{n % 5000:07d}")
    grown = _rss_mib() - before
    assert d.images_noted() == 150_000
    assert d.lno_of_imn("I700012347") == "L0002347"
    assert grown < 8, f"the router's memory grew {grown:.1f} MiB for 150,000 image owners"
