import torch

from weightspace.adapt.interpolate import aligned_interpolation
from weightspace.adapt.merging import common_frame, needs_alignment, zoo_mean
from weightspace.adapt.retrieval import nearest_by_descriptor, nearest_by_support, support_losses
from weightspace.nets import MLP
from weightspace.symmetry.permute import apply_permutation, random_permutation
from weightspace.tasks.base import Task

ARCH = MLP(input_shape=(2,), n_classes=2, hidden=(4,))
SPEC = ARCH.spec()


def linear_member(sign: float) -> dict:
    """A hand-set classifier: class 1 iff sign * x0 > 0 (hidden units pass +x0 and -x0)."""
    p = {n: torch.zeros(s) for n, s in SPEC.shapes.items()}
    p["fc0.weight"][0, 0], p["fc0.weight"][1, 0] = 5.0, -5.0
    p["fc1.weight"][1, 0], p["fc1.weight"][1, 1] = 5.0 * sign, -5.0 * sign
    return p


def task() -> Task:
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.3], [2.0, 1.0], [-0.5, -1.0]])
    y = (x[:, 0] > 0).long()
    return Task("t", "toy", (0.2,), "toy", x, y, x, y, x, y, n_classes=2)


def test_support_loss_retrieval_picks_the_member_that_solves_the_task():
    members = [ARCH.init_params(0), linear_member(-1.0), linear_member(1.0)]
    zoo = {n: torch.stack([m[n] for m in members]) for n in SPEC.names}
    losses = support_losses(ARCH, zoo, task())
    assert nearest_by_support(losses).tolist() == [2]
    assert nearest_by_support(losses, k=2).tolist()[0] == 2
    assert nearest_by_support(losses, k=9).numel() == 3


def test_descriptor_retrieval():
    desc = torch.tensor([[0.0], [1.0], [0.25]])
    assert nearest_by_descriptor(desc, torch.tensor([0.2]), k=2).tolist() == [2, 0]


def test_interpolating_a_member_with_its_permuted_copy_returns_it():
    a = ARCH.init_params(5)
    copy = apply_permutation(a, SPEC, random_permutation(SPEC, torch.Generator().manual_seed(0)))
    mid = aligned_interpolation(SPEC, a, copy)
    for n in SPEC.names:
        torch.testing.assert_close(mid[n], a[n])


def test_zoo_mean_of_permuted_copies_after_alignment():
    a = ARCH.init_params(5)
    g = torch.Generator().manual_seed(0)
    copies = [apply_permutation(a, SPEC, random_permutation(SPEC, g)) for _ in range(4)]
    zoo = {n: torch.stack([c[n] for c in copies]) for n in SPEC.names}
    framed = common_frame(SPEC, zoo, align=True)
    mean = zoo_mean(framed)
    ref = copies[0]  # barycentre alignment starts from member 0's frame
    for n in SPEC.names:
        torch.testing.assert_close(mean[n], ref[n])
    assert torch.equal(common_frame(SPEC, zoo, align=False)["fc0.weight"], zoo["fc0.weight"])


def test_needs_alignment():
    assert needs_alignment(["independent:uniform", "independent:uniform"])
    assert not needs_alignment(["shared:abc", "shared:abc"])
    assert needs_alignment(["shared:abc", "shared:def"])
