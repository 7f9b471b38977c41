"""Low-rank latent: a rank-r delta per layer from the medoid, exact where the delta is rank <= r."""

import torch

from weightspace.encode.codec import WeightCodec
from weightspace.nets import CNN, MLP

ARCH = MLP(input_shape=(6,), n_classes=3, hidden=(16, 8))


def _zoo_with_rank2_deltas(arch, m=5, rank=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = arch.init_params(0)
    members = []
    for _ in range(m):
        p = {}
        for n, v in base.items():
            if v.dim() >= 2:
                mat = v.reshape(v.shape[0], -1)
                delta = torch.randn(mat.shape[0], rank, generator=g) @ torch.randn(rank, mat.shape[1], generator=g)
                p[n] = (mat + 0.1 * delta).reshape(v.shape)
            else:
                p[n] = v + 0.1 * torch.randn(v.shape, generator=g)
        members.append(p)
    return {n: torch.stack([p[n] for p in members]) for n in base}


def test_dimension_grows_with_widths_not_weight_count():
    spec = ARCH.spec()
    codec = WeightCodec.fit(spec, _zoo_with_rank2_deltas(ARCH), latent="lowrank", k=4)
    # (6+16)*4 + (16+8)*4 + (8+3)*3 (rank capped by the 3-wide output) + biases 16+8+3
    assert codec.dim == 22 * 4 + 24 * 4 + 11 * 3 + 27


def test_round_trip_is_exact_for_deltas_within_the_rank():
    zoo = _zoo_with_rank2_deltas(ARCH, rank=2)
    codec = WeightCodec.fit(ARCH.spec(), zoo, latent="lowrank", k=2)
    back = codec.decode(codec.encode(zoo))
    # every member differs from the medoid by at most rank 2 + rank 2 = 4 > 2: check the medoid row exactly,
    # and the others to the best rank-2 approximation (never worse than the medoid itself)
    flat = codec.normalizer.to_flat(zoo)
    err = (codec.normalizer.to_flat(back) - flat).norm(dim=1)
    assert err.min() < 1e-4 and (err <= (flat - codec.latent.base).norm(dim=1) + 1e-5).all()


def test_init_vector_decodes_to_the_base_and_persists():
    zoo = _zoo_with_rank2_deltas(CNN(input_shape=(1, 8, 8), n_classes=3, channels=(4,)), m=3)
    spec = CNN(input_shape=(1, 8, 8), n_classes=3, channels=(4,)).spec()
    codec = WeightCodec.fit(spec, zoo, latent="lowrank", k=3)
    z = codec.latent.init_vector(seed=1)[None]
    assert torch.allclose(codec.normalizer.to_flat(codec.decode(z)), codec.latent.base[None], atol=1e-6)
    assert (z != 0).any()  # V factors start nonzero so U receives gradients
    again = WeightCodec.from_state(spec, codec.config(), codec.state())
    z2 = torch.randn(2, codec.dim)
    for n, v in codec.decode(z2).items():
        torch.testing.assert_close(again.decode(z2)[n], v)




def test_direct_decoding_equals_the_flat_path_and_keeps_gradients():
    for arch in (ARCH, CNN(input_shape=(1, 8, 8), n_classes=3, channels=(4,))):
        codec = WeightCodec.fit(arch.spec(), _zoo_with_rank2_deltas(arch, m=4), latent="lowrank", k=3)
        z = torch.randn(3, codec.dim, requires_grad=True)
        direct = codec.decode(z)
        flat = codec.normalizer.from_flat(codec.latent.decode(z))
        for n, v in flat.items():
            torch.testing.assert_close(direct[n], v, rtol=1e-5, atol=1e-5)
        sum(v.sum() for v in direct.values()).backward()
        assert z.grad is not None and z.grad.abs().sum() > 0
