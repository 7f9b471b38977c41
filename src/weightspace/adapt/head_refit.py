"""Head refitting: a logistic-regression head on an architecture's own features.

For an architecture whose head is label-specific (``arch.head_refit``; LoRA sets: the head on
the adapted sentence embedding), what carries over between tasks is the body, not the head. So
generated, merged or frozen bodies are used with a head fitted on the task's support set, in
closed form and in milliseconds: logistic regression (sklearn, C = 1, as MTEB's classification
protocol) on the features the body produces (``arch.features``). Works for any architecture that
declares ``features_dim`` and ends in a plain head (adapt.multitask.head_names).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

from weightspace.adapt.multitask import head_names
from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture

NEVER = -1e4  # head bias of a class absent from the support set: finite, and never the argmax

Weights = dict[str, torch.Tensor]


def check_refittable(arch: Architecture) -> None:
    if arch.features_dim is None:
        raise WeightspaceError(f"refitting a head needs the features it reads, which {arch.name} networks do not expose.")


def logistic_head(features: torch.Tensor, y: torch.Tensor, n_classes: int, C: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A linear head (n_classes, d), (n_classes,) equal to sklearn's LogisticRegression on (features, y).

    sklearn's binary model has one logit z for classes_[1] against classes_[0]; rows giving
    logits [0, z] have the same softmax (sigmoid(z)) and argmax, so they are that model exactly."""
    from sklearn.linear_model import LogisticRegression

    labels = np.unique(y.numpy())
    if labels.size < 2:
        raise WeightspaceError(f"the support set holds only class {labels.tolist()}; fitting a head needs examples of 2 classes.")
    clf = LogisticRegression(C=C, max_iter=1000).fit(features.double().numpy(), y.numpy())
    coef, intercept = torch.from_numpy(clf.coef_).float(), torch.from_numpy(clf.intercept_).float()
    classes = torch.as_tensor(clf.classes_, dtype=torch.long)
    weight, bias = torch.zeros(n_classes, features.shape[1]), torch.full((n_classes,), NEVER)
    if classes.numel() == 2:
        bias[classes[0]] = 0.0
        weight[classes[1]], bias[classes[1]] = coef[0], intercept[0]
    else:
        weight[classes], bias[classes] = coef, intercept
    return weight, bias


def head_loss(features: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> float:
    """Mean cross-entropy of a head on features."""
    return float(nn.functional.cross_entropy(features.double() @ weight.double().T + bias.double(), y))


def refit_head(arch: Architecture, params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
               ) -> tuple[Weights, float]:
    """``params`` with the head refitted on the features of (x, y), and that head's loss there.
    ``params`` may omit the head: only the body is read."""
    weight_name, bias_name = head_names(arch)
    body = {k: v for k, v in params.items() if k not in (weight_name, bias_name)}
    check_refittable(arch)
    feats = arch.features(body, x)
    weight, bias = logistic_head(feats, y, arch.n_classes)
    return {**body, weight_name: weight, bias_name: bias}, head_loss(feats, y, weight, bias)


def fit_head(arch: Architecture, params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> Weights:
    """The same weights with the head refitted on (x, y) (the ``+head`` generator modes)."""
    return refit_head(arch, params, x, y)[0]
