"""Class-subset families: the far held-out split, and digits-subsets on the embedded digits."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from weightspace.errors import WeightspaceError
from weightspace.tasks import family_from_dict, make_family
from weightspace.tasks.digits import digits_base
from weightspace.tasks.subsets import complement, flip_distance, mask_of


def hamming(a, b) -> int:
    return len(set(a) ^ set(b))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_heldout=st.integers(1, 40), distance=st.integers(1, 2))
def test_every_heldout_subset_is_far_from_every_zoo_subset_and_its_complement(seed, n_heldout, distance):
    family = make_family("digits-subsets", n_tasks=40, n_heldout=n_heldout, seed=seed, heldout_distance=distance)
    zoo = [family.subset_of(t) for t in family.zoo_task_ids()]
    held = [family.subset_of(t) for t in family.heldout_task_ids()]
    assert len(held) == n_heldout and len(set(zoo)) == 40
    for h in held:
        assert min(min(hamming(h, z), hamming(complement(h), z)) for z in zoo) >= distance
    assert min(family.heldout_distances().values()) >= distance


def test_distance_three_holds_too():
    family = make_family("digits-subsets", n_tasks=40, n_heldout=6, heldout_distance=3)
    assert min(family.heldout_distances().values()) >= 3


def test_default_split_is_at_distance_two_and_a_random_split_would_not_be():
    family = make_family("digits-subsets")
    assert len(family.zoo_task_ids()) == 256 and len(family.heldout_task_ids()) == 32
    assert min(family.heldout_distances().values()) == 2
    near = make_family("digits-subsets", heldout_distance=1)
    assert min(near.heldout_distances().values()) == 1  # what the policy exists to prevent


def test_flip_distance_counts_moves_up_to_label_flip():
    a = mask_of((0, 1, 2))
    assert flip_distance(a, mask_of((0, 1, 2, 3))) == 1
    assert flip_distance(a, mask_of(complement((0, 1, 2, 3)))) == 1  # same task with labels flipped
    assert flip_distance(a, mask_of((3, 4, 5, 6, 7, 8, 9))) == 0


def test_digits_subset_tasks_label_by_membership_and_share_images():
    family = make_family("digits-subsets", n_tasks=20, n_heldout=4, support_size=40)
    x_train, y_train, _, _ = digits_base(0)
    for task_id in family.zoo_task_ids()[:2] + family.heldout_task_ids()[:2]:
        task = family.task(task_id)
        subset = family.subset_of(task_id)
        assert task.input_shape == (1, 10, 10) and task.n_classes == 2
        assert torch.equal(task.x_train, torch.from_numpy(x_train))
        assert torch.equal(task.y_train, torch.isin(torch.from_numpy(y_train), torch.tensor(subset)).long())
        assert torch.bincount(task.support_y, minlength=2).tolist() == [20, 20]  # balanced even when |S| = 1
        assert task.descriptor == tuple(float(c in subset) for c in range(10))
        assert task.description.startswith("Handwritten digits: is it a")


def test_kway_digits_subsets_relabel_in_class_order():
    family = make_family("digits-subsets", mode="kway", k=3, n_tasks=100, n_heldout=20)
    task = family.task(family.heldout_task_ids()[0])
    subset = torch.tensor(family.subset_of(task.task_id))
    x_train, y_train, _, _ = digits_base(0)
    keep = torch.isin(torch.from_numpy(y_train), subset)
    assert task.n_classes == 3 and len(task.y_train) == int(keep.sum())
    assert torch.equal(subset[task.y_train], torch.from_numpy(y_train)[keep])
    assert min(family.heldout_distances().values()) >= 2  # distinct k-subsets always are


def test_split_survives_the_zoo_record():
    family = make_family("digits-subsets", n_tasks=30, n_heldout=5, seed=3)
    rebuilt = family_from_dict(family.to_dict())
    assert rebuilt.zoo_task_ids() == family.zoo_task_ids() and rebuilt.heldout_task_ids() == family.heldout_task_ids()


@pytest.mark.parametrize(
    "config, words",
    [
        ({"heldout_distance": 0}, "heldout_distance=0 is out of range"),
        ({"n_heldout": 48, "n_tasks": 400}, "leaves 3\\d\\d zoo subsets; choose n_tasks <= 3\\d\\d"),
        ({"mode": "pairs"}, "binary or kway"),
    ],
)
def test_bad_subset_configs_say_what_to_change(config, words):
    with pytest.raises(WeightspaceError, match=words):
        make_family("digits-subsets", **config)


def test_all_proper_subsets_are_reachable_at_distance_one():
    family = make_family("digits-subsets", n_tasks=1022 - 2 * 10, n_heldout=10, heldout_distance=1)
    every = {s for n in range(1, 10) for s in itertools.combinations(range(10), n)}
    used = {family.subset_of(t) for t in family.zoo_task_ids() + family.heldout_task_ids()}
    assert used | {complement(family.subset_of(t)) for t in family.heldout_task_ids()} == every
