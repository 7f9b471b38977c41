"""`weightspace analyze` end to end on tiny zoos written through the store (untrained members:
the geometry stage does not care how weights were made, and it keeps the test fast)."""

from __future__ import annotations

import json

import pytest
import torch

import weightspace.cli.analyze_cmd  # noqa: F401  (registers the command on the app)
from weightspace.cli import main
from weightspace.geometry.spectrum import pca_spectrum
from weightspace.nets import MLP
from weightspace.tasks import make_family
from weightspace.zoo.store import MemberRecord, Zoo

FAMILY = make_family("digits-rotate", n_tasks=4, n_heldout=1)
ARCH = MLP(input_shape=FAMILY.input_shape, n_classes=FAMILY.n_classes, hidden=(6,))


def write_zoo(path, seeds_per_task: int, shared: bool, n_tasks: int = 4) -> Zoo:
    zoo = Zoo.create(path, ARCH, FAMILY.to_dict(), {"kind": "zoo", "command": "test"})
    base = ARCH.init_params(1000)
    g = torch.Generator().manual_seed(0)
    records, members = [], []
    for task_id in FAMILY.zoo_task_ids()[:n_tasks]:
        for seed in range(seeds_per_task):
            if shared:  # a shared start: every member near the same base weights
                params = {n: t + 0.05 * torch.randn(t.shape, generator=g) for n, t in base.items()}
            else:
                params = ARCH.init_params(seed * 100 + len(members))
            members.append(params)
            records.append(MemberRecord(
                key=f"{task_id}|seed={seed}|step=0", task_id=task_id, descriptor=FAMILY.descriptor(task_id),
                seed=seed, init="shared:abc" if shared else "independent:uniform", optimizer={}, step=0))
    zoo.add(records, {n: torch.stack([m[n] for m in members]) for n in ARCH.spec().names})
    return zoo


@pytest.fixture(scope="module")
def zoos(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoos")
    write_zoo(root / "indep", seeds_per_task=2, shared=False).close()
    write_zoo(root / "shared", seeds_per_task=1, shared=True).close()
    return root


def run(*args) -> int:
    return main(["analyze", *map(str, args), "--lambdas", "5", "--eval-examples", "40"])


def test_analyze_reports_raw_aligned_and_shared_zoos_side_by_side(zoos, tmp_path, capsys):
    out = tmp_path / "report"
    assert run(zoos / "indep", zoos / "shared", "--out", out, "--pairs", "2") == 0
    report = json.loads((out / "analysis.json").read_text())
    indep, shared = report["zoos"]
    assert report["config"]["pairs"] == 2

    assert indep["init_kind"] == "independent" and indep["n_members"] == 8 and indep["path"] == str(zoos / "indep")
    assert set(indep["variants"]) == {"raw", "aligned"}
    zoo = Zoo.open(zoos / "indep")
    expected = pca_spectrum(zoo.spec, zoo.load())
    zoo.close()
    raw = indep["variants"]["raw"]
    assert raw["spectrum"]["dims_90"] == expected.dims(0.9) and raw["spectrum"]["dims_99"] == expected.dims(0.99)
    assert raw["spectrum"]["dims_99"] <= 7  # 8 members span at most 7 directions
    assert {"two_nn", "mle"} <= set(raw["intrinsic_dim"]) and raw["clustering"]["knn_r2"] is not None
    assert [row["name"] for row in raw["modularity_layers"]] == ["fc0", "fc1"]
    assert len(raw["map"]["coords"]) == 8
    conn = indep["connectivity"]
    assert conn["pairing"] == "same_task" and len(conn["pairs"]) == 2
    assert all(a == b for a, b in conn["pair_tasks"])
    assert conn["raw"]["n_pairs"] == 2 and conn["aligned"]["n_pairs"] == 2 and len(conn["raw"]["lambdas"]) == 5

    assert shared["init_kind"] == "shared" and list(shared["variants"]) == ["raw"]
    assert "shared-start" in shared["alignment"]["skipped"]
    assert shared["connectivity"]["pairing"] == "neighbouring_tasks" and shared["connectivity"]["aligned"] is None
    assert all(a != b for a, b in shared["connectivity"]["pair_tasks"])

    for name in ("spectrum.png", "indep-map-raw.png", "indep-map-aligned.png", "indep-barrier-acc.png",
                 "indep-barrier-loss.png", "indep-layer-variance.png", "shared-map-raw.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    card = json.loads((out / "card.json").read_text())
    assert card["kind"] == "analysis" and "analysis.json" in card["outputs"]
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))
    table = capsys.readouterr().out
    assert "indep" in table and "shared" in table and "aligned" in table


def test_no_align_keeps_only_raw_weights(zoos, tmp_path):
    out = tmp_path / "r"
    assert run(zoos / "indep", "--out", out, "--pairs", "1", "--no-align") == 0
    (indep,) = json.loads((out / "analysis.json").read_text())["zoos"]
    assert list(indep["variants"]) == ["raw"] and "--no-align" in indep["alignment"]["skipped"]
    assert indep["connectivity"]["aligned"] is None and indep["connectivity"]["raw"]["n_pairs"] == 1


def test_bad_input_is_one_sentence(zoos, tmp_path, capsys):
    assert run(tmp_path / "nothing", "--out", tmp_path / "o") == 2
    assert "is not a zoo" in capsys.readouterr().err
    assert run(zoos / "indep", "--out", tmp_path / "o", "--pairs", "0") == 2
    assert "--pairs" in capsys.readouterr().err
    write_zoo(tmp_path / "small", seeds_per_task=1, shared=False, n_tasks=3).close()
    assert run(tmp_path / "small", "--out", tmp_path / "o") == 2
    assert "has 3 final members; analysis needs at least 4" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert run(zoos / "indep", "--out", tmp_path / "afile") == 2
    assert "is a file" in capsys.readouterr().err
