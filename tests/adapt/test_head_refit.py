"""Head refitting is generic: any architecture that exposes features and declares a refitted head
gets the logistic-regression head of adapt.head_refit, not only LoRA."""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from weightspace.adapt.head_refit import fit_head, prior_head, refit_head
from weightspace.errors import WeightspaceError
from weightspace.nets.mlp import MLP


class _FeatureModule(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.fc0, self.fc1 = nn.Linear(arch.widths[0], arch.widths[1]), nn.Linear(arch.widths[1], arch.widths[2])

    def forward(self, x, features: bool = False):
        h = torch.relu(self.fc0(x.flatten(1)))
        return h if features else self.fc1(h)


@dataclass(frozen=True)
class FeatureMLP(MLP):
    """A one-hidden-layer MLP whose hidden layer is declared as features, its head refitted per task."""

    features_dim: ClassVar[int] = 6
    head_refit: ClassVar[bool] = True

    def module(self) -> nn.Module:
        return _FeatureModule(self)


def test_any_architecture_with_features_gets_the_sklearn_head():
    arch = FeatureMLP(input_shape=(3,), n_classes=2, hidden=(6,))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long()
    body = {k: v for k, v in arch.init_params(1).items() if k.startswith("fc0")}
    fitted, loss = refit_head(arch, body, x, y)
    assert torch.equal(fitted["fc0.weight"], body["fc0.weight"]) and set(fitted) == set(arch.spec().names)
    feats = arch.features(body, x)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(feats.double().numpy(), y.numpy())
    logits = torch.func.functional_call(arch.module(), fitted, (x,))
    assert np.allclose(torch.softmax(logits.double(), 1)[:, 1].numpy(), clf.predict_proba(feats.double().numpy())[:, 1],
                       atol=1e-5)
    assert loss > 0 and torch.equal(fit_head(arch, fitted, x, y)["fc1.bias"], fitted["fc1.bias"])


def test_an_architecture_without_features_is_refused():
    with pytest.raises(WeightspaceError, match="features"):
        refit_head(MLP(input_shape=(3,), n_classes=2, hidden=(4,)), {}, torch.zeros(2, 3), torch.tensor([0, 1]))


def _binary_support(n: int = 20, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, 6, generator=g)
    return feats, (feats[:, 0] > 0).long()


def test_a_prior_head_is_the_optimum_of_its_penalised_loss():
    feats, y = _binary_support()
    w0, b0 = torch.randn(2, 6, generator=torch.Generator().manual_seed(1)), torch.tensor([0.3, -0.3])
    weight, bias = prior_head(feats, y, w0, b0, strength=0.1)
    w, b = weight.double().requires_grad_(), bias.double().requires_grad_()
    loss = nn.functional.cross_entropy(feats.double() @ w.T + b, y) + 0.05 * ((w - w0.double()).pow(2).sum()
                                                                           + (b - b0.double()).pow(2).sum())
    loss.backward()
    assert w.grad.abs().max() < 1e-4 and b.grad.abs().max() < 1e-4  # first-order optimality


def test_the_prior_pulls_the_fit_towards_the_generated_head():
    feats, y = _binary_support()
    wrong = torch.zeros(2, 6)
    wrong[1, 1] = 5.0  # a head that reads the wrong feature
    strong, _ = prior_head(feats, y, wrong, torch.zeros(2), strength=1e4)
    weak, weak_bias = prior_head(feats, y, wrong, torch.zeros(2), strength=1e-3)
    assert torch.allclose(strong, wrong, atol=1e-2)  # a strong prior keeps the generated head
    predicted = (feats @ weak.T + weak_bias).argmax(1)
    assert (predicted == y).float().mean() == 1.0  # a weak one follows the support set


def test_a_prior_head_fits_a_one_class_support_set_and_refuses_no_prior():
    feats, _ = _binary_support()
    weight, bias = prior_head(feats, torch.ones(len(feats), dtype=torch.long), torch.zeros(2, 6), torch.zeros(2), 1.0)
    assert torch.isfinite(weight).all() and bias[1] > bias[0]
    with pytest.raises(WeightspaceError, match="prior strength"):
        prior_head(feats, torch.ones(len(feats), dtype=torch.long), torch.zeros(2, 6), torch.zeros(2), 0.0)


def test_fit_head_with_a_prior_centres_on_the_weights_own_head():
    arch = FeatureMLP(input_shape=(3,), n_classes=2, hidden=(6,))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long()
    params = arch.init_params(1)
    kept = fit_head(arch, params, x, y, prior=1e5)
    assert torch.allclose(kept["fc1.weight"], params["fc1.weight"], atol=1e-3)
    assert torch.equal(kept["fc0.weight"], params["fc0.weight"])
