"""Shared machinery of the task families: rotations, angle grids, seeding and Task assembly.

The transform families (digits-rotate, fmnist-rotate, mnist1d) all follow one pattern: one base
dataset per family config, and a task = that dataset passed through a transform indexed by an
angle. ``AngleFamily`` implements that pattern once; a subclass only says where its base data
comes from and how an angle transforms it.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from scipy import ndimage

from weightspace.config import from_mapping, option
from weightspace.errors import WeightspaceError
from weightspace.tasks.base import Task, TaskCache, TaskFamily, stratified_support

# Independent random streams derived from one family seed (never the global RNG).
STREAM_SPLIT, STREAM_DATA, STREAM_SUPPORT, STREAM_PRETRAIN = 1, 2, 3, 4
PRETRAIN_ID = "pretrain"
# A generator's training pool (task_pool=family) refines the zoo's angle grid this many times.
POOL_POINTS_PER_GAP = 4

# The generalist pretrain task sees every training example at this many random angles.
PRETRAIN_COPIES = 4


def rng_for(seed: int, stream: int, *extra: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream, *extra]))


def task_seed(seed: int, task_id: str) -> int:
    """A stable per-task seed (crc32, not hash(): Python's str hash changes every process)."""
    return int(rng_for(seed, STREAM_SUPPORT, zlib.crc32(task_id.encode())).integers(2**31))


def rotate_images(x: np.ndarray, angle: float) -> np.ndarray:
    """Rotate images (..., H, W) in [0, 1] counter-clockwise as displayed by ``angle`` degrees.

    Cubic-spline interpolation, same size, zero fill outside the image; deterministic. Cubic
    rather than bilinear because bilinear blurs small images: on 10x10 digits it costs the
    default MLP 0.1-0.3 points of mean accuracy, most near the diagonals. The spline can
    overshoot, so the result is clipped back to [0, 1].
    """
    out = ndimage.rotate(x, float(angle), axes=(-1, -2), reshape=False, order=3, mode="constant", cval=0.0)
    return np.clip(out, 0.0, 1.0, out=out).astype(np.float32, copy=False)


def phase_shift(x: np.ndarray, angles: float | np.ndarray) -> np.ndarray:
    """Shift the phase of every frequency of signals (N, L) by ``angles`` degrees.

    The 1-D analogue of a rotation: each positive-frequency Fourier coefficient is multiplied by
    exp(-i*angle); the mean (DC) and, for even L, the Nyquist term are left alone. The map is
    orthogonal, so a task's difficulty does not depend on the angle, while the shapes a
    classifier must recognise do (at 90 degrees peaks become zero crossings; 180 flips the sign).
    """
    n = x.shape[-1]
    spec = np.fft.rfft(x, axis=-1)
    top = spec.shape[-1] - 1 if n % 2 == 0 else spec.shape[-1]
    turn = np.exp(-1j * np.deg2rad(np.asarray(angles, dtype=np.float64)))
    spec[..., 1:top] *= turn[..., None] if np.ndim(turn) else turn
    return np.fft.irfft(spec, n=n, axis=-1).astype(np.float32)


def angle_split(n_tasks: int, n_heldout: int, angle_range: float, seed: int) -> tuple[list[float], list[float]]:
    """Zoo angles on an even grid over [0, angle_range); held-out angles strictly between grid points.

    Each held-out angle lies in its own randomly chosen gap, 25-75% of the way across, so no
    held-out task is a zoo task or sits on top of one. Angles are rounded to 0.01 degrees, the
    resolution of task ids; the spacing check keeps rounding from closing a gap.
    """
    if n_tasks < 1 or n_heldout < 0:
        raise WeightspaceError(f"n_tasks must be >= 1 and n_heldout >= 0, got n_tasks={n_tasks}, n_heldout={n_heldout}.")
    if not 0 < angle_range <= 360:
        raise WeightspaceError(f"angle_range must be in (0, 360] degrees, got {angle_range}.")
    spacing = angle_range / n_tasks
    if spacing < 0.1:
        raise WeightspaceError(
            f"{n_tasks} tasks over {angle_range} degrees are closer than 0.1 degrees; "
            f"lower n_tasks to at most {int(angle_range * 10)}."
        )
    if n_heldout > n_tasks:
        raise WeightspaceError(f"n_heldout={n_heldout} exceeds the {n_tasks} gaps of the zoo grid; lower it or raise n_tasks.")
    rng = rng_for(seed, STREAM_SPLIT)
    gaps = rng.choice(n_tasks, size=n_heldout, replace=False)
    where = rng.uniform(0.25, 0.75, size=n_heldout)
    zoo = [round(i * spacing, 2) for i in range(n_tasks)]
    heldout = sorted(round(float((g + w) * spacing), 2) for g, w in zip(gaps, where))
    return zoo, heldout


def assemble_task(
    family: str,
    task_id: str,
    descriptor: Sequence[float],
    description: str,
    train: tuple[Any, Any],
    test: tuple[Any, Any],
    n_classes: int,
    support_size: int,
    seed: int,
) -> Task:
    """Build a Task from numpy arrays or tensors (tensors are kept, not copied)."""
    x_train, y_train = torch.as_tensor(train[0], dtype=torch.float32), torch.as_tensor(train[1], dtype=torch.int64)
    x_test, y_test = torch.as_tensor(test[0], dtype=torch.float32), torch.as_tensor(test[1], dtype=torch.int64)
    idx = torch.from_numpy(stratified_support(y_train.numpy(), support_size, task_seed(seed, task_id)))
    return Task(
        task_id=task_id,
        family=family,
        descriptor=tuple(float(d) for d in descriptor),
        description=description,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        support_x=x_train[idx],
        support_y=y_train[idx],
        n_classes=n_classes,
    )


def check_support_size(support_size: int) -> None:
    if not 1 <= support_size <= 100:
        raise WeightspaceError(f"support_size must be between 1 and 100 (a user's few labelled examples), got {support_size}.")


@dataclass
class AngleConfig:
    """Options every angle family shares; a family with data options of its own adds them."""

    n_tasks: int = option(256, "zoo tasks: angles on an even grid over [0, angle_range)")
    n_heldout: int = option(32, "held-out tasks: angles strictly between zoo grid points, never trained on")
    seed: int = option(0, "fixes the family's data (split, subsample or generated signals), held-out angles, "
                          "support sets and pretrain angles")
    support_size: int = option(100, "labelled examples a user brings for a new task (at most 100)")
    angle_range: float = option(360.0, "angles are drawn from [0, angle_range) degrees")


class AngleFamily(TaskFamily):
    """Tasks = one base dataset under an angle-indexed transform; ids like "rot=037.50".

    Subclasses set ``name``, ``id_prefix``, ``input_shape``, ``n_classes``, ``cache``,
    ``data_phrase``, ``transform_phrase`` and ``config_class`` (AngleConfig or a subclass), and
    implement ``_base()`` (x_train, y_train,
    x_test, y_test as numpy in the final input shape, shared by all tasks); a family whose
    transform is not an image rotation (the default, matching ``id_prefix`` "rot" and
    ``transform_phrase``) also overrides ``_transform(x, angle)``.
    """

    id_prefix: str = "rot"
    descriptor_names = ("angle_deg",)
    data_phrase: str  # e.g. "Digit images"
    transform_phrase: str = "rotated by {:g} degrees"
    cache: TaskCache

    def __init__(self, **options: Any):
        cfg = self.cfg = from_mapping(self.config_class, options, where=f"family {self.name}")
        check_support_size(cfg.support_size)
        self._zoo, self._heldout = angle_split(cfg.n_tasks, cfg.n_heldout, cfg.angle_range, cfg.seed)
        self._pool = self._training_angles()
        self._angles = {self.task_id_for(a): a for a in self._pool + self._heldout}

    def _distance(self, a: float, b: float) -> float:
        d = abs(a - b)
        return min(d, 360.0 - d) if self.cfg.angle_range == 360 else d

    def _training_angles(self) -> list[float]:
        """The zoo grid refined POOL_POINTS_PER_GAP times, keeping an angle only where it is at
        least as far from every held-out angle as that angle's nearest zoo angle: the pool never
        comes closer to a held-out task than the zoo does. Zoo angles are all in it."""
        near = {h: min(self._distance(h, z) for z in self._zoo) for h in self._heldout}
        spacing = self.cfg.angle_range / self.cfg.n_tasks
        pool = []
        for i in range(self.cfg.n_tasks * POOL_POINTS_PER_GAP):
            a = self._zoo[i // POOL_POINTS_PER_GAP] if i % POOL_POINTS_PER_GAP == 0 else round(i * spacing / POOL_POINTS_PER_GAP, 2)
            if all(self._distance(a, h) >= d for h, d in near.items()):
                pool.append(a)
        return pool

    def task_id_for(self, angle: float) -> str:
        return f"{self.id_prefix}={angle:06.2f}"

    def zoo_task_ids(self) -> list[str]:
        return [self.task_id_for(a) for a in self._zoo]

    def heldout_task_ids(self) -> list[str]:
        return [self.task_id_for(a) for a in self._heldout]

    def training_task_ids(self) -> list[str]:
        """Angles a generator may train on without checkpoints (a rotation costs only a transform):
        see ``_training_angles``."""
        return [self.task_id_for(a) for a in self._pool]

    def angle_of(self, task_id: str) -> float:
        if task_id not in self._angles:
            raise WeightspaceError(
                f"{task_id!r} is not a task of family {self.name}; use one of zoo_task_ids() or heldout_task_ids() "
                f'(ids look like "{self.task_id_for(37.5)}").'
            )
        return self._angles[task_id]

    def descriptor(self, task_id: str) -> tuple[float, ...]:
        return (self.angle_of(task_id),)

    def descriptor_features(self, task_id: str) -> tuple[float, ...]:
        """(cos, sin) of the angle: continuous across 359 -> 0 degrees, for conditioning generators."""
        return self.descriptor_features_of(self.descriptor(task_id))

    def descriptor_features_of(self, descriptor) -> tuple[float, ...]:
        (angle,) = super().descriptor_features_of(descriptor)
        rad = math.radians(angle)
        return (math.cos(rad), math.sin(rad))

    def task(self, task_id: str) -> Task:
        angle = self.angle_of(task_id)
        return self.cache.get(self._cache_key(task_id), lambda: self._build(task_id, angle))

    def _cache_key(self, task_id: str) -> tuple:
        return (self.name, tuple(sorted(self.config().items())), task_id)

    def _build(self, task_id: str, angle: float) -> Task:
        x_train, y_train, x_test, y_test = self._base()
        return assemble_task(
            self.name, task_id, (angle,), f"{self.data_phrase} {self.transform_phrase.format(angle)}",
            (self._transform(x_train, angle), y_train), (self._transform(x_test, angle), y_test),
            self.n_classes, self.cfg.support_size, self.cfg.seed,
        )  # fmt: skip

    def pretrain_task(self) -> Task:
        """The base data at uniformly random angles (PRETRAIN_COPIES per example): a generalist start."""
        return self.cache.get(self._cache_key(PRETRAIN_ID), self._build_pretrain)

    def _build_pretrain(self) -> Task:
        x_train, y_train, x_test, y_test = self._base()
        rng = rng_for(self.cfg.seed, STREAM_PRETRAIN)

        def spin(x: np.ndarray, copies: int) -> np.ndarray:
            x = np.concatenate([x] * copies)
            return self._transform_each(x, rng.uniform(0, self.cfg.angle_range, size=len(x)))

        return assemble_task(
            self.name, PRETRAIN_ID, (), f"{self.data_phrase} at random angles, a shared pretrained start",
            (spin(x_train, PRETRAIN_COPIES), np.concatenate([y_train] * PRETRAIN_COPIES)), (spin(x_test, 1), y_test),
            self.n_classes, self.cfg.support_size, self.cfg.seed,
        )  # fmt: skip

    def _transform_each(self, x: np.ndarray, angles: np.ndarray) -> np.ndarray:
        """Each example at its own angle; subclasses override when they can vectorise."""
        return np.concatenate([self._transform(x[i : i + 1], a) for i, a in enumerate(angles)])

    def _base(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def _transform(self, x: np.ndarray, angle: float) -> np.ndarray:
        return rotate_images(x, angle)
