"""Rotation and phase-shift helpers, the angle grid split, and the task LRU."""

import numpy as np
import pytest

from weightspace.errors import WeightspaceError
from weightspace.tasks.transforms import TaskCache, angle_split, phase_shift, rotate_images, task_seed


def test_rotate_quarter_turn_matches_rot90_counter_clockwise():
    x = np.random.default_rng(0).random((3, 1, 7, 7)).astype(np.float32)
    np.testing.assert_allclose(rotate_images(x, 90), np.rot90(x, 1, axes=(-2, -1)), atol=1e-5)
    np.testing.assert_allclose(rotate_images(x, 0), x, atol=1e-6)


def test_rotate_keeps_shape_dtype_and_range():
    x = np.random.default_rng(1).random((4, 1, 10, 10)).astype(np.float32)
    out = rotate_images(x, 37.5)
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.allclose(out, x)


def test_phase_shift_is_orthogonal_and_composes():
    x = np.random.default_rng(2).standard_normal((5, 1, 40)).astype(np.float32)
    np.testing.assert_allclose(phase_shift(x, 0), x, atol=1e-5)
    np.testing.assert_allclose(phase_shift(x, 360), x, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(phase_shift(x, 70), axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(phase_shift(phase_shift(x, 30), 50), phase_shift(x, 80), atol=1e-5)
    assert np.abs(phase_shift(x, 90) - x).max() > 0.1


def test_phase_shift_per_example_angles_match_one_at_a_time():
    x = np.random.default_rng(3).standard_normal((4, 1, 40)).astype(np.float32)
    angles = np.array([0.0, 45.0, 190.0, 300.0])
    each = np.concatenate([phase_shift(x[i : i + 1], a) for i, a in enumerate(angles)])
    np.testing.assert_allclose(phase_shift(x, angles[:, None]), each, atol=1e-6)


def test_angle_split_heldout_strictly_between_grid_points():
    zoo, held = angle_split(256, 32, 360.0, seed=5)
    spacing = 360.0 / 256
    assert len(zoo) == 256 and len(held) == 32 and not set(zoo) & set(held)
    assert all(0 <= a < 360 for a in zoo + held)
    for a in held:
        gap_pos = a / spacing - np.floor(a / spacing)
        assert 0.2 < gap_pos < 0.8  # 25-75% across a gap, less rounding to 0.01 degrees
    assert len({int(a // spacing) for a in held}) == 32  # each in its own gap


def test_angle_split_is_seeded():
    assert angle_split(64, 8, 360.0, 1) == angle_split(64, 8, 360.0, 1)
    assert angle_split(64, 8, 360.0, 1)[1] != angle_split(64, 8, 360.0, 2)[1]
    assert angle_split(64, 8, 360.0, 1)[0] == angle_split(64, 8, 360.0, 2)[0]  # the grid is fixed


@pytest.mark.parametrize(
    "args, words",
    [((5000, 1, 360.0, 0), "closer than 0.1"), ((8, 9, 360.0, 0), "n_heldout"), ((8, 1, 400.0, 0), "angle_range")],
)
def test_angle_split_rejects_bad_grids(args, words):
    with pytest.raises(WeightspaceError, match=words):
        angle_split(*args)


def test_task_seed_is_stable_and_distinct():
    assert task_seed(0, "rot=001.00") == task_seed(0, "rot=001.00")
    assert len({task_seed(0, f"rot={a:06.2f}") for a in range(50)} | {task_seed(1, "rot=001.00")}) == 51


def test_task_cache_evicts_least_recently_used():
    cache, built = TaskCache(size=2), []

    def build(key):
        built.append(key)
        return key

    for key in ("a", "b", "a", "c", "a", "b"):
        cache.get(key, lambda k=key: build(k))
    assert built == ["a", "b", "c", "b"]  # "b" was evicted when "c" arrived, "a" stayed fresh


@pytest.mark.parametrize("angle_range", [360.0, 180.0])
def test_training_pool_never_comes_closer_to_a_heldout_angle_than_the_zoo(angle_range):
    from weightspace.tasks.digits import DigitsRotate

    family = DigitsRotate(n_tasks=16, n_heldout=5, angle_range=angle_range, seed=3)
    angle = {t: family.angle_of(t) for t in family.training_task_ids() + family.heldout_task_ids()}
    pool, zoo, held = family.training_task_ids(), family.zoo_task_ids(), family.heldout_task_ids()
    assert set(zoo) <= set(pool) and not set(held) & set(pool)
    assert len(pool) > 2 * len(zoo)  # the refined grid adds angles in gaps without a held-out task

    def dist(a, b):
        d = abs(angle[a] - angle[b])
        return min(d, 360 - d) if angle_range == 360 else d

    for h in held:
        nearest_zoo = min(dist(h, z) for z in zoo)
        assert min(dist(h, p) for p in pool) >= nearest_zoo
    assert family.task(pool[1]).descriptor == (angle[pool[1]],)
