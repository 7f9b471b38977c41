"""Conditions for training batches.

Three regimes, picked from the encoder:

- fixed: the zoo's conditions as given (descriptor encoders, or support encoders with
  ``resample=False``);
- bank: a training-free support encoder (support-probe) re-encodes ``draws`` fresh support sets
  per member once, up front; each step picks one of them (plus the zoo's own set) at random;
- live: a trainable encoder (support-deepsets) encodes a freshly drawn support set every step,
  with gradients, so it trains jointly with the generator.
"""

from __future__ import annotations

import torch

from weightspace.generate.base import ZooData
from weightspace.generate.taskdata import TaskBank


class ConditionSource:
    def __init__(self, zoo: ZooData, resample: bool = True, draws: int = 16, seed: int = 0,
                 bank: TaskBank | None = None):
        enc = zoo.encoder
        self.encoder = enc
        can_draw = enc is not None and enc.kind == "support" and zoo.tasks is not None and resample
        self.mode = "fixed" if not can_draw else ("live" if enc.trainable else "bank")
        self.fixed = zoo.conditions.float()
        self.tasks = bank if bank is not None or not can_draw else TaskBank(zoo.tasks)
        if self.mode == "bank":
            self.bank = self._encode_draws(draws, seed)

    @torch.no_grad()
    def _encode_draws(self, draws: int, seed: int, chunk: int = 256) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        m = len(self.fixed)
        out = [self.fixed]
        for _ in range(draws):
            codes = []
            for start in range(0, m, chunk):
                members = torch.arange(start, min(m, start + chunk))
                codes.append(self.encoder.encode_support(*self.tasks.support(members, g)))
            out.append(torch.cat(codes))
        return torch.stack(out)  # (draws + 1, M, C)

    def __call__(self, members: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if self.mode == "fixed":
            return self.fixed[members]
        if self.mode == "bank":
            which = torch.randint(0, self.bank.shape[0], (len(members),), generator=g)
            return self.bank[which, members]
        return self.encoder.encode_support(*self.tasks.support(members, g))

    def encode(self, members: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Codes of the given support sets (B, S, ...), one per member, for objectives that use
        the very set the generator is told about; a non-support condition is the zoo's own."""
        if self.mode == "fixed":
            return self.fixed[members]
        if self.mode == "bank":
            with torch.no_grad():
                return self.encoder.encode_support(x, y)
        return self.encoder.encode_support(x, y)

    def all_draws(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every (member index, condition) pair available without training: for closed-form fits."""
        if self.mode == "bank":
            r, m = self.bank.shape[:2]
            return torch.arange(m).repeat(r), self.bank.reshape(r * m, -1)
        return torch.arange(len(self.fixed)), self.fixed

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.encoder.parameters()) if self.mode == "live" else []

    def train(self, on: bool) -> None:
        if self.mode == "live":
            self.encoder.net.train(on)
