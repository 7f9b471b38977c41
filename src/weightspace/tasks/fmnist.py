"""Fashion-MNIST families: fmnist-rotate (rotated images) and fmnist-subsets (class-subset tasks).

The data comes from the Debian package dataset-fashion-mnist (IDX files parsed here with numpy
and gzip; nothing is unpickled). 256 tasks x 60000 x 784 floats would not fit in memory, so a
family uses a class-balanced subsample of n_train training and n_test test images chosen by
its seed, the same images for every task.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from weightspace.config import option
from weightspace.errors import WeightspaceError
from weightspace.tasks.registry import register_family
from weightspace.tasks.subsets import ClassSubsetFamily, SubsetsConfig
from weightspace.tasks.transforms import (
    STREAM_DATA,
    AngleConfig,
    AngleFamily,
    TaskCache,
    rng_for,
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
class FMNISTRotateConfig(AngleConfig):
    n_train: int = option(6000, "training images per task (class-balanced subsample, multiple of 10)")
    n_test: int = option(2000, "test images per task (class-balanced subsample of t10k, multiple of 10)")


@register_family("fmnist-rotate", pretty="rotated Fashion-MNIST",
                 paper="Fashion-MNIST (Xiao et al. 2017); rotation tasks as in Rotated MNIST (Larochelle et al. 2007)")
class FMNISTRotate(AngleFamily):
    """Fashion-MNIST images rotated by an angle; descriptor (angle_deg,)."""

    input_shape = (1, 28, 28)
    n_classes = 10
    data_phrase = "Fashion-MNIST images"
    cache = TaskCache(size=4)  # a task is ~25 MB at the default sizes
    config_class = FMNISTRotateConfig

    def _base(self):
        return tuple(t.numpy() for t in _load(self.cfg))


@dataclass
class FMNISTSubsetsConfig(SubsetsConfig):
    n_train: int = option(6000, "training images (class-balanced subsample, multiple of 10)")
    n_test: int = option(2000, "test images (class-balanced subsample of t10k, multiple of 10)")


@register_family("fmnist-subsets", pretty="Fashion-MNIST class subsets",
                 paper="Fashion-MNIST (Xiao et al. 2017); class-subset tasks as in Split MNIST (Zenke et al. 2017)")
class FMNISTSubsets(ClassSubsetFamily):
    """Class-subset tasks on Fashion-MNIST (see ``weightspace.tasks.subsets``); all tasks share
    the very same image tensors, only the labels differ."""

    input_shape = (1, 28, 28)
    class_names = CLASS_NAMES
    data_phrase = "Fashion-MNIST"
    cache = TaskCache(size=16)
    config_class = FMNISTSubsetsConfig

    def _base(self):
        return _load(self.cfg)
