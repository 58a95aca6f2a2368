"""Slides open from file:// with no network: reveal.js initialises and the page requests nothing remote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from workshop_utils.instructor import slides

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="Debian's chromium is not installed (make setup installs it as root); CI always runs this test",
)


def load_in_chromium(page: Path, workdir: Path) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and the URLs the page itself asked for (browser housekeeping excluded)."""
    assert CHROMIUM, "chromium is missing: run `make setup` as root, or apt-get install chromium"
    netlog = workdir / "net.json"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--proxy-server=127.0.0.1:9",  # anything that tries the network dies on loopback, never leaves
         f"--user-data-dir={workdir / 'profile'}", f"--log-net-log={netlog}", "--virtual-time-budget=3000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    events = json.loads(netlog.read_text())["events"]
    # Requests the page made carry its (opaque, "null") origin; Chromium's own carry "not an origin".
    page_requests = sorted({
        e["params"]["url"] for e in events
        if "url" in e.get("params", {}) and e["params"].get("initiator", "not an origin") != "not an origin"
        and e["params"]["url"].startswith(("http:", "https:"))
    })
    return proc.stdout, page_requests


def test_every_lab_has_a_deck() -> None:
    decks = {p.stem for p in (Path(__file__).parents[1] / "slides").glob("[0-9][0-9]_*.md")}
    notebooks = {p.stem for p in (Path(__file__).parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert notebooks <= decks, f"labs without a deck: {sorted(notebooks - decks)}"


def test_built_decks_reference_only_local_files(tmp_path: Path) -> None:
    decks = slides.build_slides(tmp_path)
    assert decks and (tmp_path / "reveal" / "dist" / "reveal.js").is_file()
    for deck in decks:
        text = deck.read_text()
        assert "src=\"http" not in text and "href=\"http" not in text, f"{deck.name} links to the network"


@needs_chromium
def test_deck_initialises_reveal_offline(tmp_path: Path) -> None:
    (deck, *_) = slides.build_slides(tmp_path / "slides")
    dom, requests = load_in_chromium(deck, tmp_path)
    assert "reveal" in dom and " ready" in dom, "reveal.js did not initialise (no 'ready' class on .reveal)"
    assert dom.count("<section") >= 3, "the Markdown plugin did not split the deck into slides"
    assert requests == [], f"the deck asked the network for {requests}"


@needs_chromium
def test_the_request_detector_catches_a_cdn_link(tmp_path: Path) -> None:
    page = tmp_path / "cdn.html"
    page.write_text('<html><script src="https://cdn.jsdelivr.net/npm/reveal.js/dist/reveal.js"></script></html>')
    _, requests = load_in_chromium(page, tmp_path)
    assert requests == ["https://cdn.jsdelivr.net/npm/reveal.js/dist/reveal.js"]


def test_missing_revealjs_is_an_actionable_error(monkeypatch) -> None:
    from workshop_utils.core.errors import WorkshopError

    monkeypatch.setattr(slides.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WorkshopError, match="make setup"):
        slides.revealjs_dir()


@needs_chromium
def test_a_deck_shows_the_labs_own_figure_and_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built from a lab's results, the overlay slide shows the saved PNG and the measured Dice, offline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from playwright.sync_api import sync_playwright

    from workshop_utils.core import paths, results

    build = tmp_path / "build"
    monkeypatch.setenv("WORKSHOP_BUILD_DIR", str(build))
    lab = results.start_lab("01_monai_nuclei_segmentation", "smoke")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.imshow([[0, 1], [1, 0]])
    for name in ("training_samples", "loss_curve", "overlay"):
        lab.figure(fig, name)
    plt.close(fig)
    lab.record(dice_real=0.8629, dice_synthetic_heldout=0.9146, count_real=105, count_true=125)
    lab.finish()
    deck = next(d for d in slides.build_slides(tmp_path / "slides") if d.stem.startswith("01_"))
    html = deck.read_text()
    assert "0.86" in html and 'src="figures/01_monai_nuclei_segmentation/overlay.png"' in html
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9"])
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(deck.as_uri())
        page.wait_for_function("document.querySelector('.reveal.ready') !== null", timeout=30_000)
        loaded = page.evaluate("[...document.images].filter(i => i.src.includes('overlay.png'))"
                               ".map(i => i.complete && i.naturalWidth > 0)")
        index = page.evaluate("[...document.querySelectorAll('.slides > section')]"
                              ".findIndex(s => s.innerHTML.includes('overlay.png'))")
        page.goto(deck.as_uri() + f"#/{index}")
        page.wait_for_timeout(500)
        shot = paths.build_dir() / "slide-01-overlay.png"
        page.screenshot(path=str(shot))
        browser.close()
    assert loaded == [True], "the overlay figure did not load from file://"
    assert shot.is_file()
