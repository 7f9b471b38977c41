"""Random architectures and weights for the symmetry property tests (tiny, so files run in seconds)."""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch.func import functional_call

from weightspace.nets import CNN, MLP


@st.composite
def architectures(draw, relu_only: bool = False):
    """An MLP (any depth, width, activation) or a 1-D / 2-D CNN with or without GroupNorm."""
    act = "relu" if relu_only else draw(st.sampled_from(["relu", "tanh", "gelu"]))
    kind = draw(st.sampled_from(["mlp", "cnn1d", "cnn2d", "cnn_groupnorm"]))
    classes = draw(st.integers(2, 4))
    if kind == "mlp":
        hidden = tuple(draw(st.lists(st.integers(2, 9), min_size=1, max_size=3)))
        return MLP((draw(st.integers(2, 8)),), classes, hidden, activation=act)
    channels_in = draw(st.integers(1, 3))
    spatial = (draw(st.integers(4, 9)),) if kind == "cnn1d" else (draw(st.integers(4, 6)), draw(st.integers(4, 6)))
    if kind == "cnn_groupnorm":
        groups = draw(st.sampled_from([2, 3]))
        channels = tuple(groups * w for w in draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
        return CNN((channels_in, draw(st.integers(4, 6)), draw(st.integers(4, 6))), classes, channels,
                   kernel=3, activation=act, groupnorm_groups=groups)
    channels = tuple(draw(st.lists(st.integers(2, 6), min_size=1, max_size=2)))
    return CNN((channels_in, *spatial), classes, channels, kernel=draw(st.sampled_from([1, 3])), activation=act)


def random_params(arch, seed: int) -> dict[str, torch.Tensor]:
    """Initial weights with every tensor made generic: random biases and GroupNorm affines, as
    after training (fresh inits have constant norm parameters and, for kaiming, zero biases)."""
    params = arch.init_params(seed, "uniform")
    g = torch.Generator().manual_seed(seed + 1)
    for name, value in params.items():
        if name.startswith("norm"):
            params[name] = value + 0.3 * torch.randn(value.shape, generator=g)
    return params


def logits(arch, params, x):
    with torch.no_grad():
        return functional_call(arch.module(), dict(params), (x,))


def probe_inputs(arch, n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, *arch.input_shape, generator=torch.Generator().manual_seed(seed))


def assert_same_params(a, b, atol=1e-5, rtol=1e-5):
    assert set(a) == set(b)
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=atol, rtol=rtol, msg=lambda m, n=name: f"{n}: {m}")
