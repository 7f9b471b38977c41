"""Resumable generator training: a periodic, atomic snapshot of the training loop.

A snapshot holds everything the rest of the loop depends on: the trained tensors (the
optimizer's parameters, in order), the optimizer state (moments, step counts), the learning-rate
schedule, the torch.Generator that draws batches and noise, and the step reached. What a
generator computes before its loop (codec, PCA, condition bank) is a deterministic function of
the zoo and the config, so a rerun recomputes it; the resumed run then ends with exactly the
weights an uninterrupted run gets.

The snapshot is one safetensors file (tensors, plus the non-tensor state as JSON in its
metadata) written to a temporary name and renamed, so a kill at any moment leaves the previous
snapshot or the new one, never a mix. Nothing is pickled. It records a fingerprint of the run
(generator, config, zoo, condition); a snapshot taken with other settings is ignored.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from weightspace.io import load_safetensors, save_safetensors

STATE_FILE = "train_state.safetensors"


@dataclass
class TrainState:
    """The live objects of one training loop."""

    params: list[torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator


def state_dir_for(out: str | Path) -> Path:
    """Where ``weightspace train --out OUT`` keeps its snapshot: a hidden sibling of OUT."""
    out = Path(out)
    return out.parent / f".{out.name}.train-state"


class Checkpoint:
    def __init__(self, directory: str | Path | None = None, every: int = 0, fingerprint: Any = None):
        self.directory = Path(directory) if directory is not None else None
        self.every = int(every)
        self.fingerprint = json.dumps(fingerprint, sort_keys=True, default=str)
        self.resumed_from = 0  # the step a run continued from (0: it started fresh)
        self.ignored = False  # a snapshot existed but belonged to other settings

    @property
    def path(self) -> Path | None:
        return self.directory / STATE_FILE if self.directory is not None else None

    def restore(self, state: TrainState, total: int) -> int:
        """Load the latest snapshot into ``state``; the step to continue from (0: none usable)."""
        if self.path is None or not self.path.is_file():
            return 0
        tensors, meta = load_safetensors(self.path)
        info = json.loads(meta.get("state", "{}"))
        if info.get("fingerprint") != self.fingerprint or info.get("total") != total or info.get("n_params") != len(state.params):
            self.ignored = True
            return 0
        with torch.no_grad():
            for i, p in enumerate(state.params):
                p.copy_(tensors[f"param.{i}"])
        opt_state = {int(i): {k: tensors[f"opt.{i}.{k}"] for k in keys} for i, keys in info["opt_keys"].items()}
        state.optimizer.load_state_dict({"state": opt_state, "param_groups": info["param_groups"]})
        if state.scheduler is not None:
            state.scheduler.load_state_dict(info["scheduler"])
        state.generator.set_state(tensors["rng"])
        self.resumed_from = int(info["step"])
        return self.resumed_from

    def step(self, done: int, total: int, state: TrainState) -> None:
        """Call after every step with the number of steps done; saves every ``every`` steps.

        The last step is never snapshotted: the caller saves the finished model, and a resumed run
        always has at least one step left to run.
        """
        if self.path is None or self.every <= 0 or done % self.every or done >= total:
            return
        opt = state.optimizer.state_dict()
        tensors = {f"param.{i}": p.detach().clone() for i, p in enumerate(state.params)}
        for i, entry in opt["state"].items():
            tensors.update({f"opt.{i}.{k}": v.detach().clone() for k, v in entry.items()})
        tensors["rng"] = state.generator.get_state()
        info = {"fingerprint": self.fingerprint, "step": done, "total": total, "n_params": len(state.params),
                "opt_keys": {str(i): sorted(entry) for i, entry in opt["state"].items()},
                "param_groups": opt["param_groups"],
                "scheduler": state.scheduler.state_dict() if state.scheduler is not None else None}
        save_safetensors(self.path, tensors, {"state": json.dumps(info)})

    def clear(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
