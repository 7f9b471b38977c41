"""End to end: `weightspace demo` on tiny sizes writes results.json and a report that a real
browser (headless Chromium) opens with every plot present and no console errors."""

import json
from pathlib import Path

import pytest

from browser import chrome
from weightspace.cli import main

TINY = ["tasks=8", "heldout=2", "steps=80", "pretrain_steps=40", "finetune_steps=[0,10]", "workers=0",
        "generator_options={steps: 40, warmup_steps: 40}", "subsets_generator_options={output: full, warmup_steps: 0, steps: 40, task_pool: family}"]
METHOD_KEYS = {"acc_mean", "acc_ratio_to_trained", "novelty_iou_max_mean", "nn_aligned_dist_mean", "seconds_per_task"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--out", str(out), *TINY]) == 0
    return out


def test_demo_writes_results_with_every_required_field(demo_run):
    results = json.loads((demo_run / "results.json").read_text())
    for key, method in results["methods"].items():
        assert METHOD_KEYS <= set(method), key
    assert any(m["kind"] == "generator" for m in results["methods"].values())
    assert {"retrieval", "reference", "zoo-mean", "average:16", "coordinate-gaussian"} <= set(results["methods"])
    overall = results["overall"]
    assert "adaptation_speedup" not in overall  # the old single figure is gone: three starts x two data sources
    speedups = json.loads((demo_run / "card.json").read_text())["summary"]["speedups"]
    for key, per_start in speedups.items():
        assert set(per_start) == {"shared", "scratch", "zoo-best"} and all(set(d) == {"support", "train"} for d in per_start.values())
        assert overall["cost"][key].keys() == per_start.keys()
    for stage in ("zoo-shared", "zoo-independent", "zoo-independent-aligned", "analysis", "generator"):
        assert (demo_run / stage).is_dir(), stage
    assert (demo_run / "report.html").is_file() and (demo_run / "card.json").is_file()


def test_demo_also_runs_the_subset_family_and_names_each_winner(demo_run):
    subsets = json.loads((demo_run / "subsets" / "results.json").read_text())
    kinds = {m["kind"] for m in subsets["methods"].values()}
    assert {"generator", "retrieval", "multitask", "majority", "ablation", "finetune"} <= kinds
    assert all("balanced_acc_mean" in m for m in subsets["methods"].values())
    assert (demo_run / "subsets" / "report.html").is_file()
    families = json.loads((demo_run / "card.json").read_text())["summary"]["families"]
    assert set(families) == {"digits-rotate", "digits-subsets"}
    for fam in families.values():
        assert fam["winner"] and "wins at" in fam["sentence"] and fam["margin_points"] >= 0


def test_rerun_resumes_without_redoing_work(demo_run, capsys):
    before = (demo_run / "results.json").stat().st_mtime_ns
    assert main(["demo", "--out", str(demo_run), *TINY]) == 0
    assert (demo_run / "results.json").stat().st_mtime_ns == before
    assert "already done" in capsys.readouterr().err


def test_report_opens_in_chromium_with_all_plots_and_no_errors(demo_run):
    driver = chrome()
    try:
        driver.get(Path(demo_run / "report.html").resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);")
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        title = driver.title
        headings = driver.execute_script("return Array.from(document.querySelectorAll('h2')).map(h => h.textContent);")
    finally:
        driver.quit()
    assert title.startswith("weightspace demo")
    alts = {alt for alt, *_ in images}
    assert {"accuracy vs novelty", "accuracy vs adaptation time", "weight-space map"} <= alts
    assert any(a.startswith("spectrum") for a in alts)  # the analysis plots are embedded too
    written = sorted(p.stem for p in (demo_run / "analysis").glob("*.png"))
    assert written and set(written) <= alts, sorted(set(written) - alts)  # every figure the run wrote is shown
    broken = [(alt, w, h) for alt, complete, w, h in images if not complete or w == 0 or h == 0]
    assert not broken, broken
    assert not errors, errors
    assert {"Verdict", "Figures", "All methods", "Per held-out task", "Structure of the zoo"} <= set(headings)
