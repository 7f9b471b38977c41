"""Class-subset families: a task is a subset S of a 10-class dataset's classes.

binary: label 1 if the example's class is in S. All 2^10 - 2 non-empty proper subsets are
tasks, and S and its complement are the same task with the labels flipped, so a held-out
subset keeps its complement out of the zoo too (a flipped zoo member would solve it by copying).
kway: a sorted k-subset of classes, relabelled 0..k-1 in class order.

The task space is combinatorial, and the split is built so that retrieval cannot simply copy.
With ``heldout_distance`` = d (default 2), every held-out subset is at Hamming distance >= d from
every zoo subset and from every zoo subset's complement: no zoo task differs from a held-out
one by moving a single class in or out. A random split of 1022 subsets would not give that (32
held-out subsets drawn at random almost always have a zoo neighbour at distance 1). Two distinct
k-subsets are always at distance >= 2, so in kway mode the split is a plain seeded draw.

``ClassSubsetFamily`` implements the split, ids, descriptors and task assembly once; a subclass
says where its base data comes from (``_base``) and what its classes are called.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from weightspace.config import from_mapping, option
from weightspace.errors import WeightspaceError
from weightspace.tasks.base import Task, TaskFamily
from weightspace.tasks.transforms import PRETRAIN_ID, STREAM_SPLIT, assemble_task, check_support_size, rng_for

N_BASE_CLASSES = 10
ALL_CLASSES = (1 << N_BASE_CLASSES) - 1


@dataclass
class SubsetsConfig:
    """Options every class-subset family shares; a family adds its data options."""

    mode: str = option("binary", "binary: is the class in subset S (all 2^10-2 subsets); kway: classify among a k-subset")
    k: int = option(3, "classes per task in kway mode")
    n_tasks: int = option(256, "zoo tasks, drawn by seed from the subsets the held-out policy leaves")
    n_heldout: int = option(32, "held-out tasks, never trained on (in binary mode neither are their complements)")
    heldout_distance: int = option(2, "binary: minimum Hamming distance of a held-out subset to every zoo subset and its complement")
    seed: int = option(0, "fixes the split, the data subsample and support sets")
    support_size: int = option(100, "labelled examples a user brings for a new task (at most 100)")


def mask_of(subset: tuple[int, ...]) -> int:
    return sum(1 << c for c in subset)


def subset_of_mask(mask: int) -> tuple[int, ...]:
    return tuple(c for c in range(N_BASE_CLASSES) if mask >> c & 1)


def complement(subset: tuple[int, ...]) -> tuple[int, ...]:
    return subset_of_mask(ALL_CLASSES ^ mask_of(subset))


def flip_distance(a: int, b: int) -> int:
    """Hamming distance of two binary subset tasks up to label flip: min over b and its complement."""
    d = bin(a ^ b).count("1")
    return min(d, N_BASE_CLASSES - d)


def and_join(names: list[str], word: str) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"


class ClassSubsetFamily(TaskFamily):
    """Tasks defined by a subset S of 10 classes; descriptor = the 0/1 indicator of S.

    pretrain_task(): binary, the pooled task S = {0..4} (never held out); kway, all examples
    with classes pooled into k contiguous groups (label = class * k // 10).
    Subclasses set ``name``, ``input_shape``, ``class_names``, ``data_phrase``, ``cache`` and
    ``config_class`` (SubsetsConfig or a subclass), and implement ``_base()`` -> (x_train,
    y_train, x_test, y_test) tensors with labels 0..9.
    """

    class_names: ClassVar[tuple[str, ...]]
    data_phrase: ClassVar[str]
    descriptor_names = tuple(f"class_{c}" for c in range(N_BASE_CLASSES))
    PRETRAIN_SUBSET = (0, 1, 2, 3, 4)

    def __init__(self, **options: Any):
        cfg = self.cfg = from_mapping(self.config_class, options, where=f"family {self.name}")
        if cfg.mode not in ("binary", "kway"):
            raise WeightspaceError(f"{self.name} mode {cfg.mode!r} is unknown; choose binary or kway.")
        if cfg.mode == "kway" and not 2 <= cfg.k <= 9:
            raise WeightspaceError(f"{self.name} k={cfg.k} is out of range; choose k between 2 and 9.")
        if not 1 <= cfg.heldout_distance <= N_BASE_CLASSES // 2:
            raise WeightspaceError(f"{self.name} heldout_distance={cfg.heldout_distance} is out of range; choose 1 to 5.")
        check_support_size(cfg.support_size)
        self.n_classes = 2 if cfg.mode == "binary" else cfg.k
        zoo, heldout, allowed = self._split_binary() if cfg.mode == "binary" else self._split_kway()
        self._zoo, self._heldout, self._allowed = sorted(zoo), sorted(heldout), sorted(allowed)
        self._subsets = {self.task_id_for(s): s for s in self._allowed + self._heldout}

    @staticmethod
    def task_id_for(subset: tuple[int, ...]) -> str:
        return "subset=" + "-".join(str(c) for c in subset)

    def _split_binary(self) -> tuple[list[tuple[int, ...]], ...]:
        """(zoo subsets, held-out subsets, every subset the held-out policy allows outside them)."""
        n_tasks, n_heldout, distance = self.cfg.n_tasks, self.cfg.n_heldout, self.cfg.heldout_distance
        # One representative per {S, complement} pair: the member that contains class 0.
        pairs = [(0, *rest) for r in range(N_BASE_CLASSES - 1) for rest in itertools.combinations(range(1, N_BASE_CLASSES), r)]
        candidates = [p for p in pairs if p != self.PRETRAIN_SUBSET]
        if n_tasks < 1 or not 0 <= n_heldout <= len(candidates):
            raise WeightspaceError(
                f"{self.name} binary needs n_tasks >= 1 and 0 <= n_heldout <= {len(candidates)} (got {n_tasks}, {n_heldout})."
            )
        rng = rng_for(self.cfg.seed, STREAM_SPLIT)
        held_pairs = sorted(candidates[i] for i in rng.permutation(len(candidates))[:n_heldout])
        held_masks = [mask_of(p) for p in held_pairs]
        far = [p for p in pairs if all(flip_distance(mask_of(p), h) >= distance for h in held_masks)]
        pool = [s for p in far for s in (p, complement(p))]
        if n_tasks > len(pool):
            raise WeightspaceError(
                f"{self.name} binary with n_heldout={n_heldout} at Hamming distance >= {distance} leaves {len(pool)} "
                f"zoo subsets; choose n_tasks <= {len(pool)}, fewer held-out tasks or a smaller heldout_distance."
            )
        heldout = [p if rng.integers(2) else complement(p) for p in held_pairs]
        return [pool[i] for i in rng.permutation(len(pool))[:n_tasks]], heldout, pool

    def _split_kway(self) -> tuple[list[tuple[int, ...]], ...]:
        subsets = list(itertools.combinations(range(N_BASE_CLASSES), self.cfg.k))
        n_tasks, n_heldout = self.cfg.n_tasks, self.cfg.n_heldout
        if n_tasks < 1 or n_heldout < 0 or n_tasks + n_heldout > len(subsets):
            raise WeightspaceError(
                f"{self.name} kway k={self.cfg.k} has only {len(subsets)} tasks; "
                f"choose n_tasks + n_heldout <= {len(subsets)} (got {n_tasks} + {n_heldout})."
            )
        order = rng_for(self.cfg.seed, STREAM_SPLIT).permutation(len(subsets))
        allowed = [subsets[i] for i in order[n_heldout:]]
        return [subsets[i] for i in order[n_heldout : n_heldout + n_tasks]], [subsets[i] for i in order[:n_heldout]], allowed

    def heldout_distances(self) -> dict[str, int]:
        """Each held-out task's Hamming distance to its nearest zoo subset (up to label flip in
        binary mode): what the report states so that "unseen" has a number."""
        zoo = [mask_of(s) for s in self._zoo]
        if self.cfg.mode == "binary":
            dist = flip_distance
        else:
            dist = lambda a, b: bin(a ^ b).count("1")  # noqa: E731
        return {self.task_id_for(h): min((dist(mask_of(h), z) for z in zoo), default=0) for h in self._heldout}

    def zoo_task_ids(self) -> list[str]:
        return [self.task_id_for(s) for s in self._zoo]

    def heldout_task_ids(self) -> list[str]:
        return [self.task_id_for(s) for s in self._heldout]

    def training_task_ids(self) -> list[str]:
        """Every subset at the held-out distance from all held-out subsets (binary), every
        non-held-out subset (kway): the zoo's tasks and the ones no zoo member was trained on."""
        return [self.task_id_for(s) for s in self._allowed]

    def subset_of(self, task_id: str) -> tuple[int, ...]:
        if task_id not in self._subsets:
            raise WeightspaceError(
                f"{task_id!r} is not a task of family {self.name}; use one of zoo_task_ids() or heldout_task_ids() "
                '(ids look like "subset=0-3-7").'
            )
        return self._subsets[task_id]

    def descriptor(self, task_id: str) -> tuple[float, ...]:
        members = set(self.subset_of(task_id))
        return tuple(1.0 if c in members else 0.0 for c in range(N_BASE_CLASSES))

    def descriptor_features(self, task_id: str) -> tuple[float, ...]:
        return self.descriptor(task_id)

    def task(self, task_id: str) -> Task:
        subset = self.subset_of(task_id)
        key = (self.name, tuple(sorted(self.config().items())), task_id)
        return self.cache.get(key, lambda: self._build(task_id, subset))

    def _build(self, task_id: str, subset: tuple[int, ...]) -> Task:
        x_train, y_train, x_test, y_test = self._base()
        names = [self.class_names[c] for c in subset]
        if self.cfg.mode == "binary":
            train, test = (x_train, in_subset(y_train, subset).long()), (x_test, in_subset(y_test, subset).long())
            text = f"{self.data_phrase}: is it a {and_join(names, 'or')}?"
        else:
            train, test = restrict(x_train, y_train, subset), restrict(x_test, y_test, subset)
            text = f"{self.data_phrase}: tell {and_join(names, 'and')} apart"
        return assemble_task(
            self.name, task_id, self.descriptor(task_id), text, train, test, self.n_classes, self.cfg.support_size, self.cfg.seed
        )

    def pretrain_task(self) -> Task:
        x_train, y_train, x_test, y_test = self._base()
        if self.cfg.mode == "binary":
            pool = lambda y: in_subset(y, self.PRETRAIN_SUBSET).long()  # noqa: E731
            names = and_join([self.class_names[c] for c in self.PRETRAIN_SUBSET], "or")
            text = f"{self.data_phrase}: is it a {names}? (a shared pretrained start)"
        else:
            pool = lambda y: y * self.cfg.k // N_BASE_CLASSES  # noqa: E731
            text = f"{self.data_phrase} with classes pooled into {self.cfg.k} groups, a shared pretrained start"
        return assemble_task(
            self.name, PRETRAIN_ID, (), text, (x_train, pool(y_train)), (x_test, pool(y_test)),
            self.n_classes, self.cfg.support_size, self.cfg.seed,
        )  # fmt: skip

    def _base(self) -> tuple[torch.Tensor, ...]:  # pragma: no cover - interface
        raise NotImplementedError


def in_subset(y: torch.Tensor, subset: tuple[int, ...]) -> torch.Tensor:
    return torch.isin(y, torch.tensor(subset))


def restrict(x: torch.Tensor, y: torch.Tensor, subset: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Examples of the subset's classes, relabelled 0..k-1 in class order."""
    keep = in_subset(y, subset)
    return x[keep], torch.searchsorted(torch.tensor(subset), y[keep])
