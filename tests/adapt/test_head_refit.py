"""Head refitting is generic: any architecture that exposes features and declares a refitted head
gets the logistic-regression head of adapt.head_refit, not only LoRA."""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from weightspace.adapt.head_refit import fit_head, refit_head
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
