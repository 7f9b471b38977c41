"""The HTML report renders from a results dictionary alone, with or without optional parts."""

import re

from weightspace.evaluate.results import verdict
from weightspace.report.html import _fmt, render_report, write_report


def _method(kind, acc, iou=0.5, secs=0.01, label=None, per_task=(0.9, 0.8), **extra):
    return {"kind": kind, "label": label or kind, "acc_mean": acc, "acc_ratio_to_trained": acc / 0.9,
            "novelty_iou_max_mean": iou, "nn_aligned_dist_mean": 1.0, "seconds_per_task": secs,
            "per_task": [{"acc": a} for a in per_task], **extra}


def results_fixture(with_map=True):
    methods = {
        "reference": _method("reference", 0.9, 0.6, 1.0, "trained on the task"),
        "generator:g:central": _method("generator", 0.88, 0.4, 0.002, "g central", (0.87, 0.89)),
        "retrieval": _method("retrieval", 0.85, 1.0, 0.01, "retrieval"),
        "noise:0.01": _method("memorization", 0.84, 0.95, 0.01, "noise <script>"),
        "finetune:zoo-best:support@10": _method("finetune", 0.86, 0.7, 0.05),
    }
    overall = {
        "verdict": {"generator:g:central": {"beats_retrieval_and_baselines": True, "sentence": "g beats retrieval."}},
        "cost": {"generator:g:central": {"zoo-best": {"support": {
            "adaptation_speedup": 12.0, "speedup_is_lower_bound": False, "finetune_steps_to_match_median": 30,
            "tasks_not_reached": 0, "budget_steps": 200, "per_task_steps": [30, 30]}}}},
        "finetune": {"seconds_per_step": {"support": 0.002, "train": 0.002}, "budget_steps": 200},
        "finetune_curves": {"zoo-best": {"support": {"grid": [0, 10, 20], "acc_mean": [0.85, 0.86, 0.87]}}},
        "zoo_members": 8, "zoo_aligned": False, "n_params": 100, "zoo_nn_dist_median": 2.0,
        "reference_source": {"trained here": 0, "zoo heldout members": 2},
    }
    if with_map:
        overall["weight_map"] = {"explained_variance": [0.3, 0.2],
                                 "zoo": {"xy": [[0, 0], [1, 1], [2, 0]], "descriptor": [[1, 0], [0, 1], [-1, 0]], "task_id": ["a", "b", "c"]},
                                 "methods": {"reference": [[0.5, 0.5], [1, 0]], "generator:g:central": [[0.6, 0.4], [1.1, 0.1]]}}
    return {"methods": methods, "ranking": list(methods), "tasks": ["t1", "t2"], "overall": overall,
            "card": {"command": "weightspace eval g --zoo z"}, "notes": {"acc": "test accuracy"}, "zoo": "z"}


def three_identical_modes():
    """A deterministic generator: sample, central and best-of-8 gave the same model (timings differ)."""
    r = results_fixture(with_map=False)
    m = r["methods"]
    del m["generator:g:central"]
    for key, mode, secs in (("generator:g", "sample", 0.002), ("generator:g:central", "central", 0.001),
                            ("generator:g:best-of-8", "best-of-8", 0.004)):
        m[key] = _method("generator", 0.88, 0.4, secs, f"g ({mode})", (0.87, 0.89), info={"name": "g", "mode": mode})
    o = r["overall"]
    keys = ["generator:g", "generator:g:central", "generator:g:best-of-8"]
    o["verdict"] = {k: verdict(m, k) for k in keys}
    o["cost"] = {k: {"zoo-best": {
        "support": {"tasks_not_reached": 1, "budget_steps": 200, "per_task_steps": [200, 177.5],
                    "speedup_is_lower_bound": True, "adaptation_speedup": s, "finetune_steps_to_match_median": 188.75},
        "train": {"tasks_not_reached": 0, "budget_steps": 200, "per_task_steps": [20, 25],
                  "speedup_is_lower_bound": False, "adaptation_speedup": s / 5, "finetune_steps_to_match_median": 22.5}}}
        for k, s in zip(keys, (61.7, 127.5, 58.6))}
    return r


def test_report_is_self_contained_and_escapes_text(tmp_path):
    page = render_report(results_fixture())
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page  # method labels are escaped; the page has no scripts at all
    assert "noise &lt;script&gt;" in page
    assert len(re.findall(r'<img class="plot"[^>]+src="data:image/png;base64,', page)) == 3
    assert "g beats retrieval." in page and "http://" not in page and "https://" not in page


def test_report_without_map_and_with_sweep(tmp_path):
    sweep = {"zoo_sizes": [16, 32], "acc": {"generator": [0.8, 0.85], "retrieval": [0.7, 0.8]}, "reference_acc": 0.9}
    path = write_report(tmp_path, results_fixture(with_map=False), sweep=sweep)
    page = path.read_text()
    assert len(re.findall(r'<img class="plot"', page)) == 3  # novelty, time, sweep
    assert "Zoo-size sweep" in page
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def _verdict_divs(page):
    return re.findall(r'<div class="verdict">(.*?)</div>', page, flags=re.S)


def test_identical_generator_modes_get_one_verdict():
    page = render_report(three_identical_modes())
    divs = _verdict_divs(page)
    assert len(divs) == 1, divs
    assert "g (sample = central = best-of-8: the same model) beats retrieval" in divs[0]
    assert "Modes sample, central, best-of-8 gave identical per-task accuracies" in divs[0]


def test_lower_bound_speed_ups_and_rounded_steps():
    (div,) = _verdict_divs(render_report(three_identical_modes()))
    # the slowest mode's speed-up, marked as a bound; steps as whole numbers
    assert "the best zoo start on the support set needs ≥ 189 steps (median over tasks)" in div and "speed-up ≥ 59×" in div
    assert "1 of 2 tasks never did within the 200-step budget" in div
    assert "59–128× across them" in div
    assert "needs 23 steps" in div and "speed-up 12×" in div  # the full-data source is measured, not bounded
    assert "188.750" not in div and "≥ 23" not in div


def test_speed_up_without_a_bound_has_no_sign():
    (div,) = _verdict_divs(render_report(results_fixture()))
    assert "needs 30 steps (median over tasks) to match it: speed-up 12×" in div and "≥" not in div


def test_setup_table_is_formatted_for_people():
    page = render_report(results_fixture())
    setup = page[page.index("<h2>Setup</h2>"):page.index("<h2>What the numbers mean</h2>")]
    assert "{" not in setup and "False" not in setup and "True" not in setup
    assert ">no<" in setup and "zoo heldout members: 2" in setup and "trained here" not in setup
    assert _fmt(True) == "yes" and _fmt({"a": 1, "b": 0}) == "a: 1" and _fmt([1, 2]) == "1, 2"


def test_every_analysis_figure_is_in_the_page_with_a_caption(analysis_run):
    run, adir, names = analysis_run
    results = results_fixture()
    results["zoo"] = str(run / "zoo-shared")
    page = write_report(run, results, analysis_dir=adir).read_text()
    sources = re.findall(r'data-source="([^"]+)"', page)
    assert sorted(sources) == sorted(names) and len(names) == 12  # none dropped, none twice
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    stems = {n[:-4] for n in names}
    assert not [c for c in captions if c in stems or c.replace(" ", "-") in stems]  # real captions, not file names
    assert any("rotation angle in degrees, on a cyclic colour scale" in c and "trained on this zoo" in c
               for c in captions)
    assert "the zoo the generator was trained on" in page


def test_other_figures_and_reports_of_the_run_are_linked(tmp_path, analysis_run):
    run, adir, names = analysis_run
    (run / "extra").mkdir()
    (run / "extra" / "curve.png").write_bytes((adir / names[0]).read_bytes())
    (run / "subsets").mkdir()
    (run / "subsets" / "report.html").write_text("<html></html>")
    page = write_report(run, results_fixture(), analysis_dir=adir).read_text()
    assert 'data-source="curve.png"' in page and 'href="subsets/report.html"' in page
