import torch

from weightspace.evaluate.baselines import (CoordinateGaussian, PCAGaussian, member_average, noisy_copy,
                                            tensor_zoo_std)
from weightspace.nets import MLP

ARCH = MLP(input_shape=(4,), n_classes=3, hidden=(5,))
SPEC = ARCH.spec()


def zoo(m=6):
    return ARCH.init_params_stacked(range(m))


def member(stacked, i):
    return {n: v[i] for n, v in stacked.items()}


def test_noise_zero_sigma_is_the_member_and_shapes_hold():
    z = zoo()
    std = tensor_zoo_std(SPEC, z)
    same = noisy_copy(member(z, 2), std, 0.0, torch.Generator().manual_seed(0))
    for n in SPEC.names:
        assert torch.equal(same[n], z[n][2])
    noisy = noisy_copy(member(z, 2), std, 0.1, torch.Generator().manual_seed(0))
    SPEC.validate(noisy)
    assert not torch.equal(noisy["fc0.weight"], z["fc0.weight"][2])


def test_noise_scale_follows_each_tensor_std():
    z = zoo()
    z["fc1.weight"] = z["fc1.weight"] * 100  # one tensor on a much larger scale
    std = tensor_zoo_std(SPEC, z)
    zero = {n: torch.zeros(1000, *SPEC.shapes[n]) for n in SPEC.names}
    noisy = noisy_copy(zero, std, 0.2, torch.Generator().manual_seed(1))
    for n in SPEC.names:
        assert abs(float(noisy[n].std()) / (0.2 * std[n]) - 1) < 0.05


def test_average_of_identical_members_is_the_member():
    one = ARCH.init_params(7)
    z = {n: v.unsqueeze(0).repeat(20, *[1] * v.dim()) for n, v in one.items()}
    avg = member_average(z, 16, torch.Generator().manual_seed(0))
    for n in SPEC.names:
        torch.testing.assert_close(avg[n], one[n])


def test_average_of_more_members_than_the_zoo_uses_all():
    z = zoo(4)
    avg = member_average(z, 16, torch.Generator().manual_seed(0))
    for n in SPEC.names:
        torch.testing.assert_close(avg[n], z[n].mean(0))


def test_coordinate_gaussian_shapes_and_degenerate_fit():
    g = CoordinateGaussian.fit(SPEC, zoo())
    s = g.sample(3, torch.Generator().manual_seed(0))
    SPEC.validate(s, stacked=True)
    assert s["fc0.weight"].shape[0] == 3
    one = ARCH.init_params(3)
    same = {n: v.unsqueeze(0).repeat(5, *[1] * v.dim()) for n, v in one.items()}
    s = CoordinateGaussian.fit(SPEC, same).sample(2, torch.Generator().manual_seed(0))
    for n in SPEC.names:
        torch.testing.assert_close(s[n][1], one[n])


def test_pca_gaussian_samples_stay_in_the_zoo_span():
    z = zoo(2)  # two members: every sample lies on the line through them
    g = PCAGaussian.fit(SPEC, z)
    assert g.n_components == 1
    flat = SPEC.flatten_stacked(z).double()
    s = SPEC.flatten_stacked(g.sample(50, torch.Generator().manual_seed(0))).double()
    direction = (flat[1] - flat[0]) / (flat[1] - flat[0]).norm()
    rel = s - flat.mean(0)
    residual = rel - (rel @ direction)[:, None] * direction
    assert residual.norm(dim=1).max() < 1e-4
    assert rel.norm(dim=1).std() > 0  # samples do spread along the line


def test_pca_gaussian_matches_zoo_covariance():
    z = zoo(5)
    g = PCAGaussian.fit(SPEC, z)
    assert g.n_components == 4
    flat = SPEC.flatten_stacked(z).double()
    s = SPEC.flatten_stacked(g.sample(20000, torch.Generator().manual_seed(0))).double()
    # Variance along each zoo principal axis matches the zoo's own.
    zoo_var = ((flat - flat.mean(0)) @ g.axes.T).var(0)
    sample_var = ((s - g.mean) @ g.axes.T).var(0)
    torch.testing.assert_close(sample_var, zoo_var, rtol=0.05, atol=0)
