"""A real browser (headless Chromium) opens the report of a run folder and shows every figure
the run wrote: all twelve analysis figures, each loaded, none dropped."""

from pathlib import Path

import pytest

from browser import chrome
from test_report_html import results_fixture
from weightspace.report.html import write_report


def test_every_figure_of_the_run_is_shown_in_chromium(analysis_run):
    run, adir, names = analysis_run
    results = results_fixture()
    results["zoo"] = str(run / "zoo-shared")
    page = write_report(run, results, analysis_dir=adir)
    written = sorted(p.name for p in Path(adir).glob("*.png"))
    driver = chrome()
    try:
        driver.set_window_size(1400, 3000)
        driver.get(page.resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.dataset.source || null, i.complete,"
            " i.naturalWidth, i.getBoundingClientRect().width]);")
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    finally:
        driver.quit()
    shown = sorted(src for _, src, *_ in images if src)
    assert shown == written and len(written) == 12
    assert {"accuracy vs novelty", "accuracy vs adaptation time", "weight-space map"} <= {alt for alt, *_ in images}
    broken = [(alt, w, shown_w) for alt, _, complete, w, shown_w in images if not complete or w == 0 or shown_w == 0]
    assert not broken, broken
    too_wide = [alt for alt, _, _, _, shown_w in images if shown_w > 1100]  # figures fit the page's column
    assert not too_wide, too_wide
    assert not errors, errors
