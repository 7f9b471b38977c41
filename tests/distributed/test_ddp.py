"""Data-parallel generator training: batch shares, the one-process no-op, and torchrun with 2 gloo
processes giving the generator one process gives (same seeds, same global batch)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import torch

from weightspace.distributed import DataParallel, init_from_torchrun
from weightspace.generate.data_parallel import resolve_backend
from weightspace.distributed.train_generator import main as train_main
from weightspace.errors import WeightspaceError
from weightspace.io import load_safetensors
from weightspace.nets import MLP
from weightspace.tasks import make_family
from weightspace.zoo.build import build_zoo
from weightspace.zoo.train import TrainConfig


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_rows_share_every_batch_contiguously_and_evenly(world):
    for n in range(0, 11):
        shares = [DataParallel(rank, world).rows(n) for rank in range(world)]
        assert [i for s in shares for i in range(n)[s]] == list(range(n))
        sizes = [s.stop - s.start for s in shares]
        assert max(sizes) - min(sizes) <= 1


def test_one_process_changes_nothing(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    par = init_from_torchrun()
    assert par == DataParallel.current() == DataParallel(0, 1) and par.is_main
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    loss = (w**2).sum()
    loss.backward()
    before = w.grad.clone()
    par.broadcast([w])
    assert par.average_gradients([w], loss, share=1.0) == pytest.approx(5.0)
    assert torch.equal(w.grad, before) and torch.equal(w.data, torch.tensor([1.0, 2.0]))


def test_backend_follows_the_device():
    assert resolve_backend("auto", "cpu") == "gloo" and resolve_backend("auto", "cuda") == "nccl"
    assert resolve_backend("gloo", "cpu") == "gloo"
    with pytest.raises(WeightspaceError, match="GPU tensors"):
        resolve_backend("nccl", "cpu")
    with pytest.raises(WeightspaceError, match="auto, gloo, nccl"):
        resolve_backend("mpi", "cpu")


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):
    family = make_family("digits-rotate", n_tasks=4, n_heldout=1)
    arch = MLP(input_shape=family.input_shape, n_classes=family.n_classes, hidden=(8,))
    out = tmp_path_factory.mktemp("ddp") / "zoo"
    build_zoo(out, family, arch, TrainConfig(steps=30, batch_size=32), seeds_per_task=2, init="shared",
              pretrain_steps=30, workers=0, progress=False)
    return out


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    torchrun = shutil.which("torchrun") or pytest.fail("torchrun (installed with torch) is not on PATH")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m",
                           "weightspace.distributed.train_generator", *args],
                          capture_output=True, text=True, timeout=300, env=env)


# An odd batch gives the two processes unequal shares (8 and 7 members), the harder case.
@pytest.mark.parametrize("generator, options", [
    ("token-flow", ["steps=25", "batch_size=7", "tokens_per_member=8", "hidden=32", "embed=8", "chunk=16"]),
    ("flow", ["steps=25", "batch_size=15", "hidden=32", "depth=1", "cond_dropout=0.3"]),
])
def test_two_processes_train_the_generator_one_process_trains(tmp_path, zoo_dir, generator, options):
    common = [str(zoo_dir), "--generator", generator, "--condition", "descriptor", "--quiet", *options]
    assert train_main([*common, "--out", str(tmp_path / "one")]) == 0
    run = _torchrun(*common, "--out", str(tmp_path / "two"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("wrote ") == 1  # rank 0 reports and writes; rank 1 writes nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]
    one, _ = load_safetensors(tmp_path / "one" / "generator.safetensors")
    two, _ = load_safetensors(tmp_path / "two" / "generator.safetensors")
    assert one.keys() == two.keys()
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert worst < 1e-4, f"2-process weights differ from 1-process weights by {worst}"
    assert json.loads((tmp_path / "two" / "config.json").read_text())["fit_info"]["processes"] == 2
    card = json.loads((tmp_path / "two" / "card.json").read_text())
    assert card["processes"] == 2 and card["command"].startswith("torchrun --nproc_per_node=2 -m")


def test_a_generator_that_cannot_share_batches_is_refused(tmp_path, zoo_dir):
    run = _torchrun(str(zoo_dir), "--generator", "pca-gaussian", "--out", str(tmp_path / "g"), "--quiet")
    assert run.returncode != 0 and run.stderr.count("trains in one process") == 1
    assert not (tmp_path / "g").exists()


def test_bad_input_is_one_sentence(tmp_path, capsys):
    assert train_main([str(tmp_path / "nope"), "--generator", "token-flow", "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
