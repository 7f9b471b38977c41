"""kill -9 at the worst moments: training a generator, writing generated weights, exporting adapters.

Each child process arms one fault and then runs the real code; the fault SIGKILLs the process
itself at a precise point (an optimizer step, half-way through writing the output), so the
test does not depend on timing. Killing a zoo build is covered by
tests/zoo/test_build.py::test_sigkilled_build_resumes_to_exactly_the_uninterrupted_zoo.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from weightspace.cli import main
from weightspace.export.peft import read_peft
from weightspace.io import load_safetensors

from hardening_helpers import snapshot

RESUMABLE = importlib.util.find_spec("weightspace.training_loop") is not None  # patch_serve_checkpoint.diff

# argv[1]: the fault, argv[2]: its position; the rest is a `weightspace` command line, or
# "export OUT SEED" for the library's export_peft.
CHILD = r"""
import os, signal, sys
import torch

fault, at = sys.argv[1], int(sys.argv[2])

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if fault == "optimizer-step":  # in the middle of training: before optimizer step number `at`
    from torch.optim.optimizer import register_optimizer_step_pre_hook
    steps = [0]
    def count(optimizer, args, kwargs):
        steps[0] += 1
        if steps[0] == at:
            die()
    register_optimizer_step_pre_hook(count)
elif fault == "half-written":  # after `at` bytes of the output file reached the disk
    import weightspace.io as io
    real_save = io.save_file
    def save_half(tensors, path, metadata=None):
        real_save(tensors, path, metadata=metadata)
        with open(path, "r+b") as f:
            f.truncate(at)
            os.fsync(f.fileno())
        die()
    io.save_file = save_half

if sys.argv[3] == "export":
    from weightspace.export.peft import export_peft
    from weightspace.nets.lora_minilm import LoRAMiniLM
    arch = LoRAMiniLM(n_classes=2, layers=(5,), modules=("query",), rank=2)
    g = torch.Generator().manual_seed(int(sys.argv[5]))
    params = {t.name: torch.randn(t.shape, generator=g) for t in arch.spec().tensors}
    export_peft(params, sys.argv[4], arch, overwrite=True)
    sys.exit(0)
import weightspace.cli.generate_cmd
from weightspace.cli import main
sys.exit(main(sys.argv[3:]))
"""


def killed(fault: str, at: int, *argv: str) -> None:
    child = subprocess.run([sys.executable, "-c", CHILD, fault, str(at), *argv], capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stderr[-2000:])


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_safetensors(path)[0]


def same(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_killed_generator_training_leaves_nothing_and_a_rerun_finishes_identically(built, tmp_path, capsys):
    zoo_dir, _ = built
    options = ["-g", "hypernet", "steps=40", "warmup_steps=10", "hidden=32", "depth=2", "batch_tasks=3",
               "batch_examples=32", "--quiet"]
    if RESUMABLE:
        options += ["--checkpoint-every", "20"]
    assert main(["train", str(zoo_dir), *options, "--out", str(tmp_path / "reference")]) == 0
    out = tmp_path / "gen"
    killed("optimizer-step", 36, "train", str(zoo_dir), *options, "--out", str(out))  # 35 of 50 steps done
    assert not out.exists()  # no generator, not even a partial one, under the final name
    capsys.readouterr()
    assert main(["train", str(zoo_dir), *options, "--out", str(out)]) == 0
    if RESUMABLE:  # the rerun continued from the last snapshot instead of starting over
        assert "resumed training from step 20" in capsys.readouterr().err
        assert not any(p.name.endswith(".train-state") for p in tmp_path.iterdir())
    # Resumed or restarted, the result is exactly what an uninterrupted run gives.
    assert same(tensors(out / "generator.safetensors"), tensors(tmp_path / "reference" / "generator.safetensors"))


def test_a_kill_while_writing_generated_weights_keeps_the_previous_file(built, tmp_path, zoo_support):
    _, gen = built
    out = tmp_path / "weights.safetensors"
    argv = ["generate", str(gen), "--support", str(zoo_support), "--deterministic", "--out", str(out)]
    assert main([*argv, "-n", "1"]) == 0
    previous = out.read_bytes()
    killed("half-written", 100, *argv, "-n", "2")
    assert out.read_bytes() == previous  # the final name still holds the complete earlier file
    assert main([*argv, "-n", "2"]) == 0  # and a rerun replaces it
    assert tensors(out)["fc0.weight"].shape[0] == 2


def test_a_kill_while_exporting_an_adapter_keeps_the_previous_folder(tmp_path):
    from weightspace.export.peft import export_peft
    from weightspace.nets.lora_minilm import LoRAMiniLM

    arch = LoRAMiniLM(n_classes=2, layers=(5,), modules=("query",), rank=2)
    out = export_peft({t.name: torch.zeros(t.shape) for t in arch.spec().tensors}, tmp_path / "adapter", arch)
    before = snapshot(out)
    killed("half-written", 64, "export", str(out), "2")
    assert snapshot(out) == before  # the old adapter, whole; the half-written one never got the name
    assert torch.equal(read_peft(out)[1]["head.bias"], torch.zeros(2))


@pytest.fixture
def zoo_support(built, tmp_path):
    """The support set of the zoo's first task, as a file a user would pass to --support."""
    from weightspace.io import save_safetensors
    from weightspace.tasks import family_from_dict
    from weightspace.zoo.store import Zoo

    zoo = Zoo.open(built[0])
    task = family_from_dict(zoo.family).task(zoo.records()[0].task_id)
    path = tmp_path / "support.safetensors"
    save_safetensors(path, {"x": task.support_x, "y": task.support_y})
    return path
