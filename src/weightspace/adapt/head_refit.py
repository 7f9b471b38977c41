"""Head refitting: a logistic-regression head on an architecture's own features.

For an architecture whose head is label-specific (``arch.head_refit``; LoRA sets: the head on
the adapted sentence embedding), what carries over between tasks is the body, not the head. So
generated, merged or frozen bodies are used with a head fitted on the task's support set, in
closed form and in milliseconds: logistic regression (sklearn, C = 1, as MTEB's classification
protocol) on the features the body produces (``arch.features``). Works for any architecture that
declares ``features_dim`` and ends in a plain head (adapt.multitask.head_names).

A head the generator wrote from the task's description already knows the task; twenty labelled
examples then have more to say about its threshold and a few directions than about all 384 of
them. ``prior_head`` fits the support set with the weights shrunk towards that head rather than
towards zero: maximum a posteriori logistic regression under a Gaussian prior centred on the
generated head (the ``+prior`` generator modes). The larger the strength, the closer the fit
stays to the generated head; its value is chosen on zoo tasks, never on held-out ones.
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


def prior_head(features: torch.Tensor, y: torch.Tensor, weight0: torch.Tensor, bias0: torch.Tensor,
               strength: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The head minimising mean cross-entropy on (features, y) + strength/2 * |(weight, bias) -
    (weight0, bias0)|^2: logistic regression with its prior at the given head instead of at zero.

    A support set with one class is fine here (the prior keeps the fit posed); L-BFGS in double
    from the prior itself, milliseconds for a few hundred features. On a separable support set a
    tiny strength leaves the minimum at infinity, and the fit is then the prior head moved by at
    most ``max_iter`` L-BFGS iterations: early stopping from the prior, a regulariser of its own
    (measured on WordNet tasks: strengths 1e-6..1e-4 give the same accuracy within 0.2 points)."""
    if not strength > 0:
        raise WeightspaceError(f"a prior strength is > 0 (0 would be an unregularised fit); got {strength}.")
    f, w0, b0 = features.double(), weight0.detach().double(), bias0.detach().double()
    dw = torch.zeros_like(w0, requires_grad=True)
    db = torch.zeros_like(b0, requires_grad=True)
    opt = torch.optim.LBFGS([dw, db], lr=1.0, max_iter=200, tolerance_grad=1e-9, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(f @ (w0 + dw).T + b0 + db, y) + 0.5 * strength * (dw.pow(2).sum() + db.pow(2).sum())
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(objective)
    return (w0 + dw).detach().float(), (b0 + db).detach().float()


def head_loss(features: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> float:
    """Mean cross-entropy of a head on features."""
    return float(nn.functional.cross_entropy(features.double() @ weight.double().T + bias.double(), y))


def refit_head(arch: Architecture, params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
               prior: float | None = None) -> tuple[Weights, float]:
    """``params`` with the head refitted on the features of (x, y), and that head's loss there.
    ``prior=None``: sklearn's fit, and ``params`` may omit the head (only the body is read);
    ``prior=s``: ``prior_head`` at strength s, centred on ``params``' own head."""
    weight_name, bias_name = head_names(arch)
    body = {k: v for k, v in params.items() if k not in (weight_name, bias_name)}
    check_refittable(arch)
    feats = arch.features(body, x)
    if prior is None:
        weight, bias = logistic_head(feats, y, arch.n_classes)
    else:
        weight, bias = prior_head(feats, y, params[weight_name], params[bias_name], prior)
    return {**body, weight_name: weight, bias_name: bias}, head_loss(feats, y, weight, bias)


def fit_head(arch: Architecture, params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
             prior: float | None = None) -> Weights:
    """The same weights with the head refitted on (x, y) (the ``+head`` generator modes; with
    ``prior``, shrunk towards their own head: the ``+prior`` modes)."""
    return refit_head(arch, params, x, y, prior)[0]
