"""The zoo-size sweep end to end on a tiny real zoo (8 digits-rotate tasks, 2 held-out references)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import weightspace.cli.sweep_cmd  # noqa: F401  registers `weightspace sweep`
from weightspace.cli import main
from weightspace.errors import WeightspaceError
from weightspace.evaluate.sweep import evenly_spaced, subset_zoo
from weightspace.zoo.store import Zoo

OPTIONS = ["steps=30", "warmup_steps=30"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from weightspace.nets import make_arch
    from weightspace.tasks import make_family
    from weightspace.zoo.build import build_zoo
    from weightspace.zoo.train import TrainConfig

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("sweep")
    family = make_family("digits-rotate", n_tasks=8, n_heldout=2, seed=0)
    arch = make_arch("mlp", input_shape=family.input_shape, n_classes=family.n_classes, hidden=(8,))
    build_zoo(root / "zoo", family, arch, TrainConfig(steps=60), init="shared", pretrain_steps=30,
              include_heldout=True, workers=0, progress=False).close()
    return root


@pytest.fixture(scope="module")
def swept(tiny):
    assert main(["sweep", str(tiny / "zoo"), *OPTIONS, "--sizes", "8,4", "--out", str(tiny / "run")]) == 0
    return json.loads((tiny / "run" / "sweep.json").read_text())


def test_evenly_spaced_spans_the_list():
    items = [str(i) for i in range(10)]
    assert evenly_spaced(items, 10) == items
    assert evenly_spaced(items, 5) == ["0", "2", "4", "6", "8"]
    assert len(set(evenly_spaced(items, 7))) == 7


def test_subset_keeps_chosen_tasks_and_every_reference(tiny):
    src = Zoo.open(tiny / "zoo")
    sub = subset_zoo(tiny / "zoo", tiny / "sub4", 4)
    try:
        assert sub.check() == []
        tasks = {r.task_id for r in sub.records()}
        assert len(tasks) == 4 and tasks <= {r.task_id for r in src.records()}
        assert len(sub) == 4
        assert [r.key for r in sub.records(split="heldout")] == [r.key for r in src.records(split="heldout")]
        assert len(sub.records(split="heldout")) == 2
        assert (tiny / "sub4" / "base.safetensors").is_file()
        # The weights are the source's, member for member.
        by_key = {r.key: r.member_id for r in src.records()}
        mine = sub.records()
        theirs = src.load([by_key[r.key] for r in mine])
        ours = sub.load([r.member_id for r in mine])
        assert all(torch.equal(theirs[n], ours[n]) for n in src.spec.names)
    finally:
        src.close()
        sub.close()


def test_sweep_json_has_every_size_with_finite_accuracies(swept, tiny):
    assert swept["zoo_sizes"] == [4, 8]
    assert set(swept["acc"]) == {"generated", "retrieval", "fine-tune zoo start on support set"}
    for values in swept["acc"].values():
        assert len(values) == 2 and all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)
    assert 0.0 <= swept["reference_acc"] <= 1.0
    assert swept["per_size"]["4"]["zoo_members"] == 4 and swept["per_size"]["8"]["zoo_members"] == 8
    # The numbers are the ones in each size's own results.json.
    res = json.loads((tiny / "run" / "size-4" / "results.json").read_text())
    assert swept["acc"]["retrieval"][0] == pytest.approx(res["methods"]["retrieval"]["acc_mean"])
    assert (tiny / "run" / "report.html").read_text().count("Zoo-size sweep") >= 1
    with Zoo.open(tiny / "run" / "size-8" / "zoo") as z:
        assert z.check() == [] and len(z) == 8 and len(z.records(split="heldout")) == 2


def test_rerun_resumes_without_refitting(swept, tiny):
    gen = tiny / "run" / "size-4" / "generator" / "generator.safetensors"
    stamp = gen.stat().st_mtime_ns
    assert main(["sweep", str(tiny / "zoo"), *OPTIONS, "--sizes", "4,8", "--out", str(tiny / "run")]) == 0
    assert gen.stat().st_mtime_ns == stamp
    assert json.loads((tiny / "run" / "sweep.json").read_text())["acc"] == swept["acc"]


@pytest.mark.parametrize("sizes", ["4,9", "1,4", "4,x"])
def test_bad_sizes_are_one_sentence(tiny, capsys, sizes):
    assert main(["sweep", str(tiny / "zoo"), "--sizes", sizes, "--out", str(tiny / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert not (tiny / "bad").exists()


def test_subset_larger_than_zoo_is_refused(tiny):
    with pytest.raises(WeightspaceError, match="exceeds the 8 zoo tasks"):
        subset_zoo(tiny / "zoo", tiny / "sub9", 9)
    assert not (tiny / "sub9").exists()
