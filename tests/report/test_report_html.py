"""The HTML report renders from a results dictionary alone, with or without optional parts."""

import re

from weightspace.report.html import render_report, write_report


def _method(kind, acc, iou=0.5, secs=0.01, label=None, per_task=(0.9, 0.8)):
    return {"kind": kind, "label": label or kind, "acc_mean": acc, "acc_ratio_to_trained": acc / 0.9,
            "novelty_iou_max_mean": iou, "nn_aligned_dist_mean": 1.0, "seconds_per_task": secs,
            "per_task": [{"acc": a} for a in per_task]}


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
        "adaptation_speedup": {"generator:g:central": {"support": 12.0}},
        "finetune_steps_to_match": {"generator:g:central": {"support": 30}},
        "finetune": {"seconds_per_step": {"support": 0.002, "train": 0.002}},
        "finetune_curves": {"zoo-best": {"support": {"grid": [0, 10, 20], "acc_mean": [0.85, 0.86, 0.87]}}},
        "zoo_members": 8, "zoo_aligned": True, "n_params": 100, "zoo_nn_dist_median": 2.0,
    }
    if with_map:
        overall["weight_map"] = {"explained_variance": [0.3, 0.2],
                                 "zoo": {"xy": [[0, 0], [1, 1], [2, 0]], "descriptor": [[1, 0], [0, 1], [-1, 0]], "task_id": ["a", "b", "c"]},
                                 "methods": {"reference": [[0.5, 0.5], [1, 0]], "generator:g:central": [[0.6, 0.4], [1.1, 0.1]]}}
    return {"methods": methods, "ranking": list(methods), "tasks": ["t1", "t2"], "overall": overall,
            "card": {"command": "weightspace eval g --zoo z"}, "notes": {"acc": "test accuracy"}, "zoo": "z"}


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
