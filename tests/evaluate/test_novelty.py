import torch

from weightspace.evaluate.novelty import AlignedNeighbours, error_iou, error_iou_max
from weightspace.nets import MLP
from weightspace.symmetry.permute import apply_permutation, random_permutation

ARCH = MLP(input_shape=(6,), n_classes=3, hidden=(8, 7))
SPEC = ARCH.spec()


def test_iou_identical_disjoint_and_partial():
    a = torch.tensor([[1, 1, 0, 0, 0]], dtype=torch.bool)
    zoo = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 1, 1, 0], [1, 0, 1, 0, 0]], dtype=torch.bool)
    iou = error_iou(a, zoo)
    torch.testing.assert_close(iou, torch.tensor([[1.0, 0.0, 1 / 3]]))
    assert error_iou_max(a, zoo).item() == 1.0
    assert abs(error_iou_max(a, zoo[1:]).item() - 1 / 3) < 1e-6


def test_iou_of_two_perfect_models_is_one():
    none = torch.zeros(1, 4, dtype=torch.bool)
    assert error_iou(none, none).item() == 1.0
    assert error_iou(none, torch.tensor([[1, 0, 0, 0]], dtype=torch.bool)).item() == 0.0


def test_permuted_copy_is_at_aligned_distance_zero():
    zoo = ARCH.init_params_stacked(range(5))
    near = AlignedNeighbours(SPEC, zoo)
    member = {n: v[3] for n, v in zoo.items()}
    perm = random_permutation(SPEC, torch.Generator().manual_seed(0))
    copy = apply_permutation(member, SPEC, perm)
    assert (SPEC.flatten(copy) - SPEC.flatten(member)).norm() > 1.0  # it does look different raw
    dist, idx = near.distances({n: v.unsqueeze(0) for n, v in copy.items()})
    assert dist.item() < 1e-5 and idx.item() == 3


def test_zoo_neighbour_distances():
    zoo = ARCH.init_params_stacked(range(4))
    dist = AlignedNeighbours(SPEC, zoo).zoo_nn_distances()
    assert dist.shape == (4,) and (dist > 0.5).all()
    # Add a permuted twin of member 0: both now have a neighbour at distance zero.
    twin = apply_permutation({n: v[0] for n, v in zoo.items()}, SPEC,
                             random_permutation(SPEC, torch.Generator().manual_seed(1)))
    zoo5 = {n: torch.cat([zoo[n], twin[n].unsqueeze(0)]) for n in SPEC.names}
    dist5 = AlignedNeighbours(SPEC, zoo5).zoo_nn_distances()
    assert dist5[0] < 1e-5 and dist5[4] < 1e-5 and (dist5[1:4] > 0.5).all()


def test_distance_is_never_larger_than_raw_distance():
    zoo = ARCH.init_params_stacked(range(6))
    other = ARCH.init_params_stacked([100, 101])
    near = AlignedNeighbours(SPEC, zoo)
    dist, _ = near.distances(other)
    raw = torch.cdist(SPEC.flatten_stacked(other), SPEC.flatten_stacked(zoo)).min(1).values
    assert (dist <= raw + 1e-4).all()
