"""The README's "Use generated weights in plain PyTorch" example runs as written on a file that
`weightspace generate` wrote, and the plain module computes what the architecture computes."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import torch
from torch.func import functional_call

from weightspace.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def example_code() -> str:
    section = README.read_text().split("### Use generated weights in plain PyTorch", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_loads_a_generated_file_into_plain_torch(tmp_path, monkeypatch, capsys):
    zoo, gen, out = tmp_path / "zoo", tmp_path / "gen", tmp_path / "w.safetensors"
    assert main(["zoo", "build", "--out", str(zoo), "--tasks", "8", "--heldout", "1", "--steps", "300",
                 "--hidden", "16", "--workers", "0", "--quiet"]) == 0
    assert main(["train", str(zoo), "--generator", "pca-gaussian", "--out", str(gen), "--quiet"]) == 0
    assert main(["generate", str(gen), "--task", "rot=000.00", "--out", str(out), "--deterministic"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(_write(tmp_path / "example.py", example_code())))
    printed = capsys.readouterr().out
    accuracy = float(printed.rsplit(":", 1)[1])
    assert accuracy > 0.5, printed  # a model of the upright task, far above chance (0.1)
    # The plain Sequential computes exactly what weightspace's own MLP computes with these weights.
    from weightspace.io import load_safetensors
    from weightspace.zoo.store import Zoo

    weights, _ = load_safetensors(out)
    x = namespace["x"][:64]
    ours = functional_call(Zoo.open(zoo).arch.module(), weights, (x.reshape(-1, 1, 10, 10),))
    torch.testing.assert_close(namespace["net"](x), ours)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
