"""The one training loop: optimizer, schedule, gradient clipping, checkpoint/resume and progress
around a per-step objective.

Every trained thing in the package (generators, the autoencoder latent, fine-tuning, the
multi-task network, LoRA members) differs only in what one step's loss is: ``objective(step)``
draws that step's batch (from the loop's seeded generator) and returns its loss. ``train`` does
the rest in one fixed order: zero the gradients, backward, average them over torchrun processes
(``parallel``), clip, optimizer step, schedule step, then the bookkeeping (``after_step``, the
snapshot, progress). Only the objective draws random numbers, so a loop keeps the exact order of
draws it had when each trainer wrote its own.

Resume: a ``Checkpoint`` is a periodic, atomic snapshot of a ``TrainState``, everything the rest
of the loop depends on: the trained tensors (the optimizer's parameters, in order), the
optimizer state (moments, step counts), the learning-rate schedule, the torch.Generator that
draws batches and noise, and the step reached. What a trainer computes before its loop (codec,
PCA, condition bank) is a deterministic function of its data and config, so a rerun recomputes
it; the resumed run then ends with exactly the weights an uninterrupted run gets.

The snapshot is one safetensors file (tensors, plus the non-tensor state as JSON in its
metadata) written to a temporary name and renamed, so a kill at any moment leaves the previous
snapshot or the new one, never a mix. Nothing is pickled. It records a fingerprint of the run
(generator, config, zoo, condition); a snapshot taken with other settings is ignored.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from weightspace.io import load_safetensors, save_safetensors

STATE_FILE = "train_state.safetensors"


@dataclass
class TrainState:
    """The live objects of one training loop."""

    params: list[torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: Any = None  # stepped once per step; None: a constant rate
    generator: torch.Generator | None = None  # draws the batches; a checkpoint saves and restores it


@dataclass
class Trained:
    loss: float  # the last step's loss (averaged over processes under torchrun); nan if no step ran
    seconds: float  # wall time of the steps themselves, bookkeeping (after_step, snapshots, progress) excluded
    start: int  # the step the loop began at: 0, or where a checkpoint resumed it


def adamw_cosine(params: list[torch.Tensor], lr: float, steps: int, weight_decay: float, seed: int) -> TrainState:
    """AdamW with cosine decay to 0 over ``steps``, and a generator seeded with ``seed``: the usual recipe."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    return TrainState(params, opt, sched, torch.Generator().manual_seed(seed))


def train(state: TrainState, objective: Callable[[int], Any], steps: int, *, clip: float | None = None,
          checkpoint: "Checkpoint | None" = None, parallel: Any = None, progress: Callable[..., None] | None = None,
          progress_loss: bool = False, after_step: Callable[[int], None] | None = None) -> Trained:
    """Run steps ``start..steps-1`` (``start`` from ``checkpoint``, else 0) of ``objective(step) -> loss``.

    ``clip``: max gradient norm over ``state.params``. ``parallel`` (a generate.data_parallel
    DataParallel): the objective returns ``(loss, share)``, this process's mean loss and its
    fraction of the batch; gradients are averaged over processes and only the main one snapshots
    and reports. ``progress(done, steps)`` after every step, with ``loss=`` when ``progress_loss``.
    ``after_step(done)`` runs after every step (outside the timed part).
    """
    start = checkpoint.restore(state, steps) if checkpoint is not None else 0
    main = parallel is None or parallel.is_main
    value, seconds = float("nan"), 0.0
    for step in range(start, steps):
        began = time.perf_counter()
        loss = objective(step)
        if parallel is not None:
            loss, share = loss
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        value = loss.detach() if parallel is None else parallel.average_gradients(state.params, loss, share=share)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(state.params, clip)
        state.optimizer.step()
        if state.scheduler is not None:
            state.scheduler.step()
        seconds += time.perf_counter() - began
        if after_step is not None:
            after_step(step + 1)
        if checkpoint is not None and main:  # the main process's state equals every other's
            checkpoint.step(step + 1, steps, state)
        if progress is not None and main:
            progress(step + 1, steps, **({"loss": float(value)} if progress_loss else {}))
    return Trained(float(value), seconds, start)


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
