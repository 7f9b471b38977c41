"""Fashion-MNIST families: fmnist-rotate (rotated images) and fmnist-subsets (class-subset tasks).

The data comes from the Debian package dataset-fashion-mnist (IDX files parsed here with numpy
and gzip; nothing is unpickled). 256 tasks x 60000 x 784 floats would not fit in memory, so a
family uses a class-balanced subsample of n_train training and n_test test images chosen by
its seed, the same images for every task.
"""

from __future__ import annotations

import gzip
import itertools
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from weightspace.config import from_mapping, option, to_dict
from weightspace.errors import WeightspaceError
from weightspace.tasks.base import Task, TaskFamily
from weightspace.tasks.transforms import (
    PRETRAIN_ID,
    STREAM_DATA,
    STREAM_SPLIT,
    AngleFamily,
    TaskCache,
    assemble_task,
    check_support_size,
    rng_for,
    rotate_images,
)

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MISSING_MESSAGE = (
    "Fashion-MNIST is not installed; install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)."
)
_IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # unsigned-byte images (3 dims), labels (1 dim)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (the MNIST format) as a uint8 array, checked against its header."""
    if not path.is_file():
        raise WeightspaceError(MISSING_MESSAGE)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise WeightspaceError(f"{path} is not a readable gzip file ({e}); reinstall dataset-fashion-mnist.") from None
    header = np.frombuffer(raw, dtype=">u4", count=1 + ndim) if len(raw) >= 4 * (1 + ndim) else None
    if header is None or header[0] != _IDX_MAGIC[ndim]:
        raise WeightspaceError(f"{path} is not a {ndim}-dimensional IDX file of bytes; reinstall dataset-fashion-mnist.")
    shape = tuple(int(s) for s in header[1:])
    offset = 4 * (1 + ndim)
    if len(raw) - offset != int(np.prod(shape)):
        raise WeightspaceError(f"{path} is truncated (header promises shape {shape}); reinstall dataset-fashion-mnist.")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def _balanced_pick(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    per = n // 10
    if per * 10 != n or per < 1 or per > np.bincount(y).min():
        raise WeightspaceError(f"a Fashion-MNIST subsample of {n} must be a positive multiple of 10 within {len(y)} images.")
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), size=per, replace=False) for c in range(10)])
    return np.sort(idx)


@lru_cache(maxsize=2)
def fmnist_base(n_train: int, n_test: int, seed: int, data_dir: Path | None = None) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_test, y_test): images (N, 1, 28, 28) float32 in [0, 1], balanced by class.

    Cached as tensors so that every task of a family shares the very same image tensors.
    """
    root = Path(data_dir or FASHION_MNIST_DIR)
    rng = rng_for(seed, STREAM_DATA)
    out = []
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = read_idx(root / f"{split}-labels-idx1-ubyte.gz", 1)
        images = read_idx(root / f"{split}-images-idx3-ubyte.gz", 3)
        if len(labels) != len(images):
            raise WeightspaceError(f"{root} has {len(images)} {split} images but {len(labels)} labels; reinstall the package.")
        idx = _balanced_pick(labels, n, rng)
        out += [torch.from_numpy(images[idx].astype(np.float32)[:, None] / 255.0), torch.from_numpy(labels[idx].astype(np.int64))]
    return tuple(out)


def _load(cfg) -> tuple[torch.Tensor, ...]:
    # The directory is read at call time (not bound as a default) so tests can point it elsewhere.
    return fmnist_base(cfg.n_train, cfg.n_test, cfg.seed, FASHION_MNIST_DIR)


@dataclass
class FMNISTRotateConfig:
    n_tasks: int = option(256, "zoo tasks: angles on an even grid over [0, angle_range)")
    n_heldout: int = option(32, "held-out tasks: angles strictly between zoo grid points, never trained on")
    seed: int = option(0, "fixes the image subsample, held-out angles, support sets and pretrain angles")
    support_size: int = option(100, "labelled examples a user brings for a new task (at most 100)")
    angle_range: float = option(360.0, "angles are drawn from [0, angle_range) degrees")
    n_train: int = option(6000, "training images per task (class-balanced subsample, multiple of 10)")
    n_test: int = option(2000, "test images per task (class-balanced subsample of t10k, multiple of 10)")


class FMNISTRotate(AngleFamily):
    """Fashion-MNIST images rotated by an angle; descriptor (angle_deg,)."""

    name = "fmnist-rotate"
    input_shape = (1, 28, 28)
    n_classes = 10
    data_phrase = "Fashion-MNIST images"
    cache = TaskCache(size=4)  # a task is ~25 MB at the default sizes

    def __init__(self, **config):
        super().__init__(from_mapping(FMNISTRotateConfig, config, where=f"family {self.name}"))

    def _base(self):
        return tuple(t.numpy() for t in _load(self.cfg))

    def _transform(self, x: np.ndarray, angle: float) -> np.ndarray:
        return rotate_images(x, angle)


@dataclass
class FMNISTSubsetsConfig:
    mode: str = option("binary", "binary: is the class in subset S (all 2^10-2 subsets); kway: classify among a k-subset")
    k: int = option(3, "classes per task in kway mode")
    n_tasks: int = option(256, "zoo tasks, drawn by seed from all possible subsets")
    n_heldout: int = option(32, "held-out tasks, disjoint from the zoo (in binary mode so are their complements)")
    seed: int = option(0, "fixes the image subsample, the split, and support sets")
    support_size: int = option(100, "labelled examples a user brings for a new task (at most 100)")
    n_train: int = option(6000, "training images (class-balanced subsample, multiple of 10)")
    n_test: int = option(2000, "test images (class-balanced subsample of t10k, multiple of 10)")


def _and_join(names: list[str], word: str) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"


class FMNISTSubsets(TaskFamily):
    """Tasks defined by a subset S of the 10 classes; descriptor = the 0/1 indicator of S.

    binary (default): label 1 if the class is in S, for every non-empty proper subset (1022
    tasks; S and its complement are distinct tasks with flipped labels). All tasks share the
    very same image tensors; only the labels differ. Tasks with small |S| are imbalanced
    (|S|/10 positives), so support sets are stratified. A held-out task's complement is kept
    out of the zoo too: a flipped zoo member would otherwise solve it by copying.
    kway: a sorted k-subset of classes, relabelled 0..k-1 in class order; only images of
    those classes are used.
    pretrain_task(): binary, the pooled task S = {0..4} (kept out of the held-out tasks);
    kway, all images with classes pooled into k contiguous groups (label = class * k // 10).
    """

    name = "fmnist-subsets"
    input_shape = (1, 28, 28)
    descriptor_names = tuple(f"class_{c}" for c in range(10))
    cache = TaskCache(size=16)
    PRETRAIN_SUBSET = (0, 1, 2, 3, 4)

    def __init__(self, **config):
        cfg = from_mapping(FMNISTSubsetsConfig, config, where=f"family {self.name}")
        if cfg.mode not in ("binary", "kway"):
            raise WeightspaceError(f"fmnist-subsets mode {cfg.mode!r} is unknown; choose binary or kway.")
        if cfg.mode == "kway" and not 2 <= cfg.k <= 9:
            raise WeightspaceError(f"fmnist-subsets k={cfg.k} is out of range; choose k between 2 and 9.")
        check_support_size(cfg.support_size)
        self.cfg = cfg
        self.n_classes = 2 if cfg.mode == "binary" else cfg.k
        zoo, heldout = self._split_binary() if cfg.mode == "binary" else self._split_kway()
        self._zoo, self._heldout = sorted(zoo), sorted(heldout)
        self._subsets = {self.task_id_for(s): s for s in self._zoo + self._heldout}

    @staticmethod
    def task_id_for(subset: tuple[int, ...]) -> str:
        return "subset=" + "-".join(str(c) for c in subset)

    def _split_binary(self):
        n_tasks, n_heldout = self.cfg.n_tasks, self.cfg.n_heldout
        # One representative per {S, complement} pair: the member that contains class 0.
        pairs = [(0, *rest) for r in range(9) for rest in itertools.combinations(range(1, 10), r)]
        candidates = [p for p in pairs if p != self.PRETRAIN_SUBSET]
        if n_heldout > len(candidates) or n_tasks < 1 or n_heldout < 0 or n_tasks > 2 * (len(pairs) - n_heldout):
            raise WeightspaceError(
                f"fmnist-subsets binary has {2 * len(pairs)} tasks and a held-out task also removes its complement; "
                f"choose n_tasks <= {2 * len(pairs)} - 2 * n_heldout (got n_tasks={n_tasks}, n_heldout={n_heldout})."
            )
        rng = rng_for(self.cfg.seed, STREAM_SPLIT)
        order = rng.permutation(len(candidates))
        held_pairs = {candidates[i] for i in order[:n_heldout]}
        heldout = [p if rng.integers(2) else _complement(p) for p in sorted(held_pairs)]
        pool = [s for p in pairs if p not in held_pairs for s in (p, _complement(p))]
        return [pool[i] for i in rng.permutation(len(pool))[:n_tasks]], heldout

    def _split_kway(self):
        subsets = list(itertools.combinations(range(10), self.cfg.k))
        n_tasks, n_heldout = self.cfg.n_tasks, self.cfg.n_heldout
        if n_tasks < 1 or n_heldout < 0 or n_tasks + n_heldout > len(subsets):
            raise WeightspaceError(
                f"fmnist-subsets kway k={self.cfg.k} has only {len(subsets)} tasks; "
                f"choose n_tasks + n_heldout <= {len(subsets)} (got {n_tasks} + {n_heldout})."
            )
        order = rng_for(self.cfg.seed, STREAM_SPLIT).permutation(len(subsets))
        return [subsets[i] for i in order[n_heldout : n_heldout + n_tasks]], [subsets[i] for i in order[:n_heldout]]

    def zoo_task_ids(self) -> list[str]:
        return [self.task_id_for(s) for s in self._zoo]

    def heldout_task_ids(self) -> list[str]:
        return [self.task_id_for(s) for s in self._heldout]

    def config(self) -> dict:
        return to_dict(self.cfg)

    def subset_of(self, task_id: str) -> tuple[int, ...]:
        if task_id not in self._subsets:
            raise WeightspaceError(
                f"{task_id!r} is not a task of family {self.name}; use one of zoo_task_ids() or heldout_task_ids() "
                '(ids look like "subset=0-3-7").'
            )
        return self._subsets[task_id]

    def descriptor(self, task_id: str) -> tuple[float, ...]:
        members = set(self.subset_of(task_id))
        return tuple(1.0 if c in members else 0.0 for c in range(10))

    def descriptor_features(self, task_id: str) -> tuple[float, ...]:
        return self.descriptor(task_id)

    def task(self, task_id: str) -> Task:
        subset = self.subset_of(task_id)
        key = (self.name, tuple(sorted(self.config().items())), task_id)
        return self.cache.get(key, lambda: self._build(task_id, subset))

    def _build(self, task_id: str, subset: tuple[int, ...]) -> Task:
        x_train, y_train, x_test, y_test = _load(self.cfg)
        names = [CLASS_NAMES[c] for c in subset]
        if self.cfg.mode == "binary":
            train, test = (x_train, _in(y_train, subset).long()), (x_test, _in(y_test, subset).long())
            text = f"Fashion-MNIST: is the item a {_and_join(names, 'or')}?"
        else:
            train, test = _restrict(x_train, y_train, subset), _restrict(x_test, y_test, subset)
            text = f"Fashion-MNIST: tell {_and_join(names, 'and')} apart"
        return assemble_task(
            self.name, task_id, self.descriptor(task_id), text, train, test, self.n_classes, self.cfg.support_size, self.cfg.seed
        )

    def pretrain_task(self) -> Task:
        x_train, y_train, x_test, y_test = _load(self.cfg)
        if self.cfg.mode == "binary":
            pool = lambda y: _in(y, self.PRETRAIN_SUBSET).long()  # noqa: E731
            names = _and_join([CLASS_NAMES[c] for c in self.PRETRAIN_SUBSET], "or")
            text = f"Fashion-MNIST: is the item a {names}? (a shared pretrained start)"
        else:
            pool = lambda y: y * self.cfg.k // 10  # noqa: E731
            text = f"Fashion-MNIST with classes pooled into {self.cfg.k} groups, a shared pretrained start"
        return assemble_task(
            self.name, PRETRAIN_ID, (), text, (x_train, pool(y_train)), (x_test, pool(y_test)),
            self.n_classes, self.cfg.support_size, self.cfg.seed,
        )  # fmt: skip


def _complement(subset: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(c for c in range(10) if c not in subset)


def _in(y: torch.Tensor, subset: tuple[int, ...]) -> torch.Tensor:
    return torch.isin(y, torch.tensor(subset))


def _restrict(x: torch.Tensor, y: torch.Tensor, subset: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Examples of the subset's classes, relabelled 0..k-1 in class order."""
    keep = _in(y, subset)
    return x[keep], torch.searchsorted(torch.tensor(subset), y[keep])
