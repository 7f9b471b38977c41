"""Zero-shot WordNet tasks on frozen all-MiniLM-L6-v2 embeddings: how much of a task does its
description carry before any meta-training, and does a disjunctive description ("definitions of
foods and drinks, of groups and collections or of places") work better split into its parts?

    python benchmarks/wordnet_zero_shot.py [--per-task]

Two scores of a test definition x for the task "is x about one of the supersenses in S?":
- joint: cos(e(x), e(the task's description));
- parts: max over s in S of cos(e(x), e("definitions of <plain name of s>")), a prototype per
  disjunct, so a definition close to any one member of S scores high.
The threshold of each score is chosen on 48 zoo tasks (their test sets; a grid over cosines),
then held-out accuracy is reported at it, with the threshold-free AUC beside it, by held-out kind.
Needs wordnet-base and the text stack; reads no zoo.
"""

from __future__ import annotations

import statistics
import sys

import torch


def main(argv: list[str]) -> None:
    from sklearn.metrics import roc_auc_score

    from weightspace.encode.text_conditions import embed_texts, frozen_embeddings
    from weightspace.nets.lora_minilm import LoRAMiniLM
    from weightspace.tasks.wordnet import WordNetFamily, plain_name

    torch.set_num_threads(1)
    family = WordNetFamily(inputs="hidden", hidden_layer=4)
    arch = LoRAMiniLM(n_classes=2, layers=(4, 5), modules=("query", "value"), rank=4, max_length=32, inputs="hidden")
    unit = torch.nn.functional.normalize

    def scores(task_id: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        task = family.task(task_id)
        feats = unit(frozen_embeddings(arch, task.x_test), dim=-1)
        joint = unit(embed_texts([task.description]), dim=-1)[0]
        parts = unit(embed_texts([f"definitions of {plain_name(s)}" for s in family.subset_of(task_id)]), dim=-1)
        return feats @ joint, (feats @ parts.T).max(1).values, task.y_test

    zoo = [scores(t) for t in family.zoo_task_ids()[:48]]
    held_ids = family.heldout_task_ids()
    held = [scores(t) for t in held_ids]

    def accuracy(row, which: int, threshold: float) -> float:
        return float(((row[which] > threshold).long() == row[2]).float().mean())

    for which, name in ((0, "joint description"), (1, "max over parts")):
        grid = [i / 100 for i in range(-10, 60)]
        threshold = max(grid, key=lambda th: statistics.fmean(accuracy(r, which, th) for r in zoo))
        accs = [accuracy(r, which, threshold) for r in held]
        aucs = [roc_auc_score(r[2].numpy(), r[which].numpy()) for r in held]
        kinds: dict[str, list[float]] = {}
        for acc, task_id in zip(accs, held_ids):
            kinds.setdefault(family.heldout_kind(task_id), []).append(acc)
        print(f"{name}: threshold {threshold:.2f} (chosen on zoo tasks), {len(held)} held-out tasks: "
              f"acc {statistics.fmean(accs):.4f}, AUC {statistics.fmean(aucs):.4f}; by kind: "
              + ", ".join(f"{k} {statistics.fmean(v):.3f} ({len(v)})" for k, v in sorted(kinds.items())))
        if "--per-task" in argv:
            for acc, task_id in zip(accs, held_ids):
                print(f"    {task_id}: {acc:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
