"""How much of a WordNet task its description carries on frozen MiniLM embeddings (no adapter).

    python benchmarks/description_prototypes.py [STEPS]

Three heads for each held-out task of the wordnet family (binary: "is this definition about one
of the supersenses in S?"), scored on the task's test set:

- zero-shot cosine: class 1 when cos(embedding, description embedding) exceeds one threshold,
  chosen on 24 zoo tasks' training data;
- zero-shot max over names: the same with the largest cosine to any supersense name in S;
- meta-learned map: logit = a <embedding, (I + M) e(description)> + b, with M (384 x 384), a and
  b trained on the family's training tasks (every subset of zoo supersenses far from the held-out
  ones) with Adam, 16 tasks a step. This is the description head of the hypernet (head=description)
  with the body held at the frozen model. ``NO_IDENTITY=1`` drops the identity (M alone).

The gap between the last and the others is what meta-training a head on the task space buys;
the split by held-out kind shows whether it reaches supersenses no training task used.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time

import numpy as np
import torch


def main(argv: list[str]) -> None:
    from weightspace.encode.text_conditions import embed_texts
    from weightspace.tasks import make_family
    from weightspace.tasks.wordnet import plain_name

    torch.set_num_threads(1)
    torch.manual_seed(0)
    steps = int(argv[0]) if argv else 1000
    fam = make_family("wordnet", n_tasks=96, n_heldout=32)
    t0 = time.perf_counter()
    table = embed_texts(list(fam.texts))  # every definition the family draws from, once
    row = {text: i for i, text in enumerate(fam.texts)}
    print(f"embedded {len(fam.texts)} definitions in {time.perf_counter() - t0:.0f} s")

    def split(task_id: str):
        task = fam.task(task_id)
        rows = lambda texts: table[[row[t] for t in texts]]  # noqa: E731
        return rows(task.texts_train), task.y_train.float(), rows(task.texts_test), task.y_test.float()

    heldout = fam.heldout_task_ids()
    held = [split(t) for t in heldout]
    held_desc = embed_texts([fam.description(t) for t in heldout])
    kinds = [fam.heldout_kind(t) for t in heldout]

    # Zero-shot: one threshold for all tasks, chosen on zoo tasks.
    def zero_shot(score) -> list[float]:
        thresholds = np.linspace(-0.2, 0.8, 201)
        fit = np.zeros_like(thresholds)
        for t in fam.zoo_task_ids()[:24]:
            x, y, _, _ = split(t)
            s = score(t, x).numpy()
            fit += [((s > th) == y.numpy()).mean() for th in thresholds]
        th = thresholds[fit.argmax()]
        return [float(((score(t, xt) > th).float() == yt).float().mean()) for t, (_, _, xt, yt) in zip(heldout, held)]

    whole = lambda t, x: x @ embed_texts([fam.description(t)])[0]  # noqa: E731
    names = lambda t, x: (x @ embed_texts([plain_name(s) for s in fam.subset_of(t)]).T).max(1).values  # noqa: E731
    report("zero-shot cosine to the description", zero_shot(whole), kinds)
    report("zero-shot max cosine over the supersense names", zero_shot(names), kinds)

    # Meta-learned map on the family's training tasks.
    train_ids = fam.training_task_ids()
    train = [split(t) for t in train_ids]
    train_desc = embed_texts([fam.description(t) for t in train_ids])
    identity = 0.0 if os.environ.get("NO_IDENTITY") else 1.0
    m = torch.nn.Parameter(torch.zeros(384, 384))
    a, b = torch.nn.Parameter(torch.tensor(10.0)), torch.nn.Parameter(torch.tensor(-1.0))
    opt = torch.optim.Adam([m, a, b], lr=1e-3)
    logits = lambda x, d: a * (x @ (identity * d + m @ d)) + b  # noqa: E731
    rng = random.Random(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        batch = rng.sample(range(len(train)), 16)
        loss = sum(torch.nn.functional.binary_cross_entropy_with_logits(logits(train[i][0], train_desc[i]), train[i][1])
                   for i in batch) / len(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        accs = [float(((logits(xt, d) > 0).float() == yt).float().mean()) for (_, _, xt, yt), d in zip(held, held_desc)]
    report(f"meta-learned map ({len(train)} training tasks, {steps} steps, {time.perf_counter() - t0:.0f} s"
           f"{', no identity' if not identity else ''})", accs, kinds)


def report(name: str, accs: list[float], kinds: list[str]) -> None:
    by_kind = "  ".join(f"{k} {statistics.fmean([a for a, kk in zip(accs, kinds) if kk == k]):.3f}"
                        for k in sorted(set(kinds)))
    print(f"{name}: {statistics.fmean(accs):.3f} over {len(accs)} held-out tasks ({by_kind})")


if __name__ == "__main__":
    main(sys.argv[1:])
