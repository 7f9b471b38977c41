"""mnist1d: the procedural MNIST-1D signals under a per-task phase shift.

The signals come from the ``mnist1d`` package's own generator (``make_dataset``), run locally
with the family seed: nothing is downloaded (``get_dataset``, which fetches a pickle, is never
called). A task shifts the phase of every frequency of every signal by an angle
(``transforms.phase_shift``), the 1-D analogue of rotating an image: the map is orthogonal, so
all tasks are equally hard, yet the waveforms to recognise, and so the weights that recognise
them, change with the angle. A circular shift would not do: MNIST-1D already translates its
signals at random, so shifted tasks would be nearly the same task. Samples are shared by all
tasks so the angle is the only difference between two tasks, as with the rotated images.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from weightspace.config import option
from weightspace.errors import WeightspaceError
from weightspace.tasks.registry import register_family
from weightspace.tasks.transforms import AngleConfig, AngleFamily, TaskCache, phase_shift

SIGNAL_LENGTH = 40  # mnist1d's final_seq_length default


@dataclass
class MNIST1DConfig(AngleConfig):
    num_samples: int = option(5000, "signals generated (mnist1d's default); 80% train, 20% test")


@lru_cache(maxsize=4)
def mnist1d_base(seed: int, num_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Signals (N, 1, 40) float32 (zero mean, unit std over the dataset) and int64 labels."""
    if num_samples < 100:
        raise WeightspaceError(f"mnist1d num_samples must be at least 100 (10 per class and a test split), got {num_samples}.")
    from mnist1d.data import get_dataset_args, make_dataset  # imports matplotlib; load only when used

    args = get_dataset_args()
    args.seed, args.num_samples = int(seed), int(num_samples)
    # make_dataset seeds and draws from the global `random` and numpy RNGs; restore them after
    # so that building a task never changes anyone else's random stream.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)

    def signals(x):
        return np.asarray(x, dtype=np.float32)[:, None, :]

    return signals(data["x"]), data["y"].astype(np.int64), signals(data["x_test"]), data["y_test"].astype(np.int64)


@register_family("mnist1d", pretty="phase-shifted MNIST-1D",
                 paper="MNIST-1D (Greydanus & Kobak 2020, scaling down deep learning)")
class MNIST1D(AngleFamily):
    """MNIST-1D signals (1, 40) with every frequency's phase shifted by an angle; descriptor (angle_deg,)."""

    id_prefix = "phase"
    input_shape = (1, SIGNAL_LENGTH)
    n_classes = 10
    data_phrase = "MNIST-1D signals"
    transform_phrase = "with every frequency's phase shifted by {:g} degrees"
    cache = TaskCache(size=64)  # a task is under 1 MB
    config_class = MNIST1DConfig

    def _base(self):
        return mnist1d_base(self.cfg.seed, self.cfg.num_samples)

    def _transform(self, x: np.ndarray, angle: float) -> np.ndarray:
        return phase_shift(x, angle)

    def _transform_each(self, x: np.ndarray, angles: np.ndarray) -> np.ndarray:
        return phase_shift(x, angles[:, None])  # x is (N, 1, L): one angle per signal
