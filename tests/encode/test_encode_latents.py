import pytest
import torch

from weightspace import WeightspaceError
from weightspace.encode import AELatent, LayerTokenizer, PCALatent, TensorNormalizer, WeightCodec
from weightspace.nets import CNN, MLP

MLP_ARCH = MLP(input_shape=(5,), n_classes=3, hidden=(7, 4))
CNN_ARCH = CNN(input_shape=(2, 6, 6), n_classes=4, channels=(4, 8), groupnorm_groups=2)


def stacked(arch, m=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = arch.init_params_stacked(range(m))
    # different scales per tensor, as in trained nets
    return {k: v * (1 + 3 * i) + torch.randn(v.shape, generator=g) * 0.1 + i for i, (k, v) in enumerate(base.items())}


@pytest.mark.parametrize("arch", [MLP_ARCH, CNN_ARCH])
def test_normalizer_round_trip_and_statistics(arch):
    spec, p = arch.spec(), stacked(arch)
    norm = TensorNormalizer.fit(spec, p)
    z = norm.normalize(p)
    for name in spec.names:
        assert abs(float(z[name].mean())) < 1e-4
        assert abs(float(z[name].std(unbiased=False)) - 1) < 1e-4
        assert torch.allclose(norm.denormalize(z)[name], p[name], atol=1e-5)
    back = norm.from_flat(norm.to_flat(p))
    assert all(torch.allclose(back[n], p[n], atol=1e-5) for n in spec.names)
    again = TensorNormalizer.from_state(spec, norm.state())
    assert torch.equal(again.to_flat(p), norm.to_flat(p))


@pytest.mark.parametrize("arch", [MLP_ARCH, CNN_ARCH])
@pytest.mark.parametrize("chunk", [1, 5, 16, 1000])
def test_tokens_round_trip_is_exact(arch, chunk):
    spec, p = arch.spec(), stacked(arch)
    tok = LayerTokenizer(spec, chunk)
    tokens = tok.tokenize(p)
    assert tokens.shape == (6, tok.n_tokens, chunk)
    back = tok.detokenize(tokens)
    assert all(torch.equal(back[n], p[n]) for n in spec.names)
    # padding is zero and the mask counts exactly the real entries
    assert int(tok.mask.sum()) == spec.numel
    assert torch.all(tokens[:, ~tok.mask] == 0)


def test_token_ids_name_layer_and_position():
    spec = MLP_ARCH.spec()  # fc0.weight (7, 5) = 35 entries -> chunks of 16: 3 tokens
    tok = LayerTokenizer(spec, 16)
    assert tok.layer_ids[:4].tolist() == [0, 0, 0, 1]
    assert tok.position_ids[:4].tolist() == [0, 1, 2, 0]
    assert tok.n_tokens == sum(-(-t.numel // 16) for t in spec.tensors)
    with pytest.raises(WeightspaceError, match="tokens have shape"):
        tok.detokenize(torch.zeros(2, tok.n_tokens + 1, 16))


def test_pca_full_rank_reconstructs_and_variance_picks_rank():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(10, 40, generator=g)
    full = PCALatent.fit(x, variance=1.0)
    assert full.dim == 9  # 10 centred rows span 9 directions; the 10th carries no variance
    assert torch.allclose(full.decode(full.encode(x)), x, atol=1e-4)
    low = torch.randn(30, 3, generator=g) @ torch.randn(3, 40, generator=g)
    pca = PCALatent.fit(low, variance=0.999)
    assert pca.dim == 3
    assert torch.allclose(pca.decode(pca.encode(low)), low, atol=1e-3)
    white = PCALatent.fit(low, k=3, whiten=True)
    z = white.encode(low)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(3), atol=1e-3)
    assert torch.allclose(white.decode(z), low, atol=1e-3)


def test_pca_rejects_bad_input():
    with pytest.raises(WeightspaceError, match="at least 2 members"):
        PCALatent.fit(torch.zeros(1, 5))
    with pytest.raises(WeightspaceError, match="variance fraction"):
        PCALatent.fit(torch.randn(4, 5), variance=1.5)
    with pytest.raises(WeightspaceError, match="latent has"):
        PCALatent.fit(torch.randn(4, 5), k=2).decode(torch.zeros(3))


@pytest.mark.parametrize("latent", ["pca", "ae", "none"])
def test_codec_decodes_valid_state_dicts_and_restores(latent):
    spec, p = CNN_ARCH.spec(), stacked(CNN_ARCH, m=8)
    codec = WeightCodec.fit(spec, p, latent=latent, k=4 if latent != "none" else None, ae_steps=20, ae_hidden=32)
    z = codec.encode(p)
    assert z.shape == (8, codec.dim)
    out = codec.decode_checked(torch.randn(3, codec.dim))
    spec.validate(out, stacked=True)
    assert next(iter(out.values())).shape[0] == 3
    again = WeightCodec.from_state(spec, codec.config(), codec.state())
    assert torch.allclose(again.encode(p), z, atol=1e-6)
    if latent == "none":
        assert torch.allclose(spec.flatten_stacked(codec.decode(z)), spec.flatten_stacked(p), atol=1e-5)


def test_decode_checked_rejects_non_finite():
    spec, p = MLP_ARCH.spec(), stacked(MLP_ARCH)
    codec = WeightCodec.fit(spec, p, latent="pca", k=3)
    with pytest.raises(WeightspaceError, match="NaN or infinite"):
        codec.decode_checked(torch.full((1, 3), float("nan")))


def test_autoencoder_is_deterministic_by_seed():
    x = torch.randn(12, 30, generator=torch.Generator().manual_seed(0))
    a = AELatent.fit(x, dim=4, hidden=16, steps=15, seed=3)
    b = AELatent.fit(x, dim=4, hidden=16, steps=15, seed=3)
    assert torch.equal(a.encode(x), b.encode(x))
    assert a.decode(a.encode(x)).shape == x.shape
