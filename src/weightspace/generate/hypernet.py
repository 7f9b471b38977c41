"""hypernet: an MLP from the condition to weights (PCA coefficients, or the full flat vector).

Three training objectives:

- ``regression``: mean squared error onto the zoo members' own (normalised) weights;
- ``task``: end to end through the task loss, as Text-to-LoRA's SFT mode. Generated weights are
  decoded differentiably, plugged into the architecture with torch.func.functional_call
  (vmapped over a batch of zoo tasks) and trained on those tasks' training data. By default it
  starts from ``warmup_steps`` of regression (which wants an aligned zoo); with
  ``warmup_steps=0`` it needs no aligned zoo at all, the zoo only supplying the PCA basis.
- ``fewshot``: end to end like ``task``, but scored the way ``+head`` modes use the weights: a
  prototype classifier on the generated network's features, built from the very support set the
  generator was conditioned on, classifies a disjoint query set (fewshot.py). For architectures
  whose head is refitted per task (LoRA). The generated head gets no training signal: use the
  weights with a refitted head. With ``warmup_steps=0`` and full output it starts from the
  architecture's own init (for LoRA: ΔW = 0).

``body=shared`` (with ``head=description``) is the multi-task network of a description-conditioned
zoo: one set of body weights (for LoRA: one adapter) trained jointly on the pool's tasks, and only
the head reads the condition. It has the generator's objective, pool, steps and head, so the gap
between the two is what writing a different adapter for each task adds.

With a support-set condition, every step draws fresh support sets from each task's training
data, so the encoder (trained jointly when it is learnable) generalises to the user's set.
With the regression objective, sampling adds Gaussian noise of the per-axis residual spread over
the zoo (``noise_scale``); with the task objective the generator is deterministic (every draw
is the network's output), as is ``deterministic=True``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from weightspace.config import option
from weightspace.encode.codec import WeightCodec
from weightspace.encode.functional import members_loss
from weightspace.encode.modules import mlp, seeded
from weightspace.errors import WeightspaceError
from weightspace.generate.base import Generator, ZooData
from weightspace.generate.conditions import ConditionSource
from weightspace.generate.description_head import MAPPINGS, DescriptionHead
from weightspace.generate.fewshot import check_features, episode, prototype_loss
from weightspace.generate.registry import register
from weightspace.generate.taskdata import TaskBank
from weightspace.training_loop import adamw_cosine, train

OBJECTIVES = ("regression", "task", "fewshot")
OUTPUTS = ("pca", "full", "lowrank")
HEADS = ("generated", "description")
BODIES = ("conditioned", "shared")
TASK_POOLS = ("zoo", "family")


@dataclass
class HypernetConfig:
    objective: str = option("task", "regression (onto zoo weights), task (end to end through the task loss) or "
                                    "fewshot (features scored by a support-set prototype classifier; for refitted heads)",
                            choices=OBJECTIVES)
    output: str = option("pca", "pca (coefficients of the zoo's PCA), full (every normalised weight) or lowrank "
                                "(per layer a rank-`rank` delta U Vᵀ from the zoo's medoid: output grows with the "
                                "layers' widths, not the weight count; for large networks)", choices=OUTPUTS)
    rank: int = option(8, "rank of each layer's delta (output=lowrank)", min=1)
    k: int = option(0, "PCA components; 0 = as many as `variance` needs")
    variance: float = option(0.9999, "fraction of the zoo's weight variance the PCA keeps when k = 0")
    hidden: int = option(256, "width of the hypernetwork's hidden layers")
    depth: int = option(3, "number of hidden layers")
    # Measured at 1M weights (output=lowrank, rank 16: 61,856 outputs): one sample on one thread
    # took 8.6 ms, 7.2 of them in the output layer, a matrix-vector product that reads its
    # 256 x 61,856 weights (63 MB) from memory. A narrow last layer reads bottleneck x outputs.
    bottleneck: int = option(0, "width of one more, narrow hidden layer before the output (0 = none): a sample then "
                                "reads bottleneck x outputs weights of the output layer instead of hidden x outputs, "
                                "what bounds generation time for large outputs", min=0)
    steps: int = option(1000, "optimisation steps of the chosen objective (task: after the warm start)")
    # Measured on digits-rotate: a long task phase overfits every task's training set (held-out
    # accuracy falls as it grows), a regression start keeps the zoo's well-generalising weights.
    warmup_steps: int = option(2000, "regression steps before the task or fewshot objective starts")
    lr: float = option(1e-3, "AdamW learning rate (cosine decay to 0)")
    weight_decay: float = option(1e-4, "AdamW weight decay")
    batch_tasks: int = option(32, "zoo members per step")
    batch_examples: int = option(128, "training examples per task per step (task; fewshot: query examples, "
                                      "capped by the smallest task's training set less the support set)")
    resample_support: bool = option(True, "draw fresh support sets from each zoo task's training data every step")
    support_draws: int = option(16, "pre-encoded support draws per member for training-free encoders")
    noise_scale: float = option(1.0, "sampling noise in units of the zoo residual spread (objective=regression; 0 = deterministic)")
    task_pool: str = option("zoo", "tasks the task or fewshot objective trains on: zoo (the zoo members' tasks) or "
                                   "family (every task of the family's allowed space, training_task_ids(): for class "
                                   "subsets, also the subsets no zoo member was trained on; needs warmup_steps=0)",
                            choices=TASK_POOLS)
    pool_size: int = option(0, "task_pool=family: train on the zoo's tasks plus a seeded sample of the family's "
                               "others, this many in all (0 = every one); a pool of text tasks holds each task's "
                               "cached activations (wordnet: 16 MB a task)", min=0)
    pool_family: dict = option({}, "task_pool=family: family options that widen the training space only, e.g. "
                                   "wordnet's {concepts: 128} (named sub-concepts as auxiliary tasks, all of them in the "
                                   "pool beside the pool_size sample); the zoo's and held-out tasks must stay the same")
    head: str = option("generated", "generated (the network writes the head with the rest) or description (binary "
                                    "tasks, objective=task: the head is a learned linear map of the condition that "
                                    "starts as cosine to the description's embedding; see description_head.py)",
                       choices=HEADS)
    head_map: str = option("raw", "head=description: the coordinates its linear map is learned in, raw (the "
                                  "description's embedding, v = e + M e) or standardised (the encoder's standardised "
                                  "condition, v = A c + m; generators saved before raw); see description_head.py",
                           choices=MAPPINGS)
    body: str = option("conditioned", "conditioned (the weights are a function of the condition) or shared (one set of "
                                      "body weights for every task, trained jointly on the pool's tasks; with "
                                      "head=description only the head reads the condition: the multi-task network "
                                      "that per-task synthesis has to beat)", choices=BODIES)
    # L2-SP (Li et al. 2018, "Explicit inductive bias for transfer learning with convolutional
    # networks"). Tried on WordNet to keep generated adapters near the frozen model for supersenses
    # no training task used: worse at 0.3 and 3 (RESULTS.md, session 12), so off by default.
    anchor: float = option(0.0, "objective=task: weight of a penalty on the mean squared distance (in the codec's "
                                "normalised coordinates) of each generated output from the one training starts at "
                                "(full output from the architecture's init: for LoRA ΔW = 0); 0 = none", min=0.0)
    seed: int = option(0, "seed of initialisation, batches and support draws")


@register("hypernet", pretty="hypernetwork",
          paper="HyperNetworks (Ha et al. 2017); end-to-end SFT mode of Text-to-LoRA (Charakorn et al. 2025)")
class HypernetGenerator(Generator):
    Config = HypernetConfig
    head: DescriptionHead | None = None

    @property
    def wants_alignment(self) -> bool:
        """Regression (also as a warm start) compares weights across members; the task loss does not."""
        return self.config.objective == "regression" or self.config.warmup_steps > 0

    def _build(self, cond_dim: int, out_dim: int) -> None:
        c = self.config
        with seeded(c.seed):
            self.net = mlp([cond_dim] + [c.hidden] * c.depth + ([c.bottleneck] if c.bottleneck else []) + [out_dim])
        # Start at the zoo's centre: zero last layer, so the first output is the latent's origin
        # (the PCA mean) or, for full output, the bias set by _fit.
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.resid_std = torch.zeros(out_dim)  # per-axis spread of zoo residuals, set after fitting

    def _fit(self, zoo: ZooData, progress=None) -> None:
        c = self.config
        if c.objective != "regression" and zoo.tasks is None:
            raise WeightspaceError(f"hypernet objective={c.objective} needs the zoo's tasks; build the zoo data with tasks.")
        if c.objective == "fewshot":
            check_features(zoo.arch)
        if c.head == "description" and (c.objective != "task" or c.output != "full" or c.warmup_steps > 0):
            raise WeightspaceError("hypernet head=description trains through the task loss from the frozen body; use "
                                   "objective=task output=full warmup_steps=0.")
        if c.body == "shared" and c.head != "description":
            raise WeightspaceError("hypernet body=shared makes every output the same network; it needs head=description "
                                   "(then the head alone reads the condition), or use condition none.")
        if c.task_pool == "family" and (c.objective == "regression" or c.warmup_steps > 0):
            raise WeightspaceError("hypernet task_pool=family trains through the task loss on tasks without "
                                   "checkpoints; use objective=task or fewshot with warmup_steps=0.")
        if c.anchor and c.objective != "task":
            raise WeightspaceError("hypernet anchor prices departures from the starting weights under the task loss; "
                                   "use objective=task, or anchor=0.")
        if c.pool_family and c.task_pool != "family":
            raise WeightspaceError("hypernet pool_family sets the options of the family's training pool; it needs "
                                   "task_pool=family.")
        latent = {"pca": "pca", "full": "none", "lowrank": "lowrank"}[c.output]
        self.codec = WeightCodec.fit(zoo.spec, zoo.params, latent=latent, k=(c.rank if c.output == "lowrank" else c.k or None),
                                     variance=None if c.k or c.output != "pca" else c.variance)
        target = self.codec.encode(zoo.params)
        self._build(zoo.encoder.dim if zoo.encoder else zoo.conditions.shape[1], self.codec.dim)
        if c.head == "description":
            frame = zoo.encoder.embedding_frame() if zoo.encoder is not None else None  # none: v is learned
            self.head = DescriptionHead(zoo.arch, self.net[0].in_features, frame, c.head_map)
        if c.output == "full" and (c.objective == "fewshot" or c.head == "description") and c.warmup_steps == 0:
            # Start from the architecture's own init (for LoRA, PEFT's: ΔW = 0, the frozen model).
            # Measured on chatterbot: from zoo adapters, which do not carry over to held-out topics,
            # the few-shot phase ended below the probe on frozen embeddings; from ΔW = 0, above it.
            # A description head starts as zero-shot cosine on the frozen body's embeddings.
            with torch.no_grad():
                self.net[-1].bias.copy_(self.codec.encode(zoo.arch.init_params_stacked([c.seed]))[0])
        elif c.output == "lowrank":  # the medoid, with V factors small and random (U = V = 0 is a saddle)
            with torch.no_grad():
                self.net[-1].bias.copy_(self.codec.latent.init_vector(c.seed))
        elif c.output == "full":  # start from the zoo member nearest the centre (a working network)
            medoid = int(((target - target.mean(0)) ** 2).sum(1).argmin())
            with torch.no_grad():
                self.net[-1].bias.copy_(target[medoid])
        start = self.net[-1].bias.detach().clone()  # the output every condition gets at step 0
        pool = family_pool(zoo, c.pool_size, c.seed, c.pool_family) if c.task_pool == "family" else zoo
        tasks = TaskBank(pool.tasks) if pool.tasks is not None else None
        # fewshot encodes each step's own support sets: pre-encoded draws are only for a warm-up
        draws = 0 if c.objective == "fewshot" and c.warmup_steps == 0 else c.support_draws
        source = ConditionSource(pool, c.resample_support, draws, c.seed, bank=tasks)
        self.fit_info["training_tasks"] = len(pool)
        module = zoo.arch.module()
        regression_steps = c.steps if c.objective == "regression" else c.warmup_steps
        total = regression_steps + (0 if c.objective == "regression" else c.steps)
        head_params = list(self.head.parameters()) if self.head is not None else []
        state = adamw_cosine(list(self.net.parameters()) + source.parameters() + head_params, c.lr, total,
                             c.weight_decay, c.seed)
        g = state.generator

        def regression(step: int) -> torch.Tensor:  # onto the zoo members' own weights
            members = torch.randint(0, len(pool), (c.batch_tasks,), generator=g)
            return ((self._body(source(members, g)) - target[members]) ** 2).mean()

        def task(step: int) -> torch.Tensor:  # the task loss of the decoded weights on the tasks' data
            members = torch.randint(0, len(pool), (c.batch_tasks,), generator=g)
            cond = source(members, g)
            x, y = tasks.minibatch(members, c.batch_examples, g)
            z = self._body(cond)
            loss = members_loss(module, self._decode(z, cond), x, y, per_member=True)[0].mean()
            return loss + c.anchor * (z - start).pow(2).mean() if c.anchor else loss

        def fewshot(step: int) -> torch.Tensor:  # a support-set prototype classifier on the features
            members = torch.randint(0, len(pool), (c.batch_tasks,), generator=g)
            sx, sy, qx, qy = episode(tasks, members, c.batch_examples, g)
            z = self._body(source.encode(members, sx, sy))
            return prototype_loss(zoo.arch, module, self.codec.decode(z), sx, sy, qx, qy)

        objective = {"regression": regression, "task": task, "fewshot": fewshot}[c.objective]
        self.net.train()
        source.train(True)
        run = train(state, lambda step: (regression if step < regression_steps else objective)(step), total,
                    clip=1.0, checkpoint=self.checkpoint, progress=progress, progress_loss=True)
        self.net.eval()
        source.train(False)
        with torch.no_grad():
            cond = zoo.encoder.encode_tasks(zoo.tasks) if source.mode == "live" else zoo.conditions
            resid = target - self._body(cond.float())
        # Sampling noise models the zoo's spread around the prediction; task-trained outputs are
        # fitted to tasks, not to members, so that spread says nothing about them: deterministic.
        self.resid_std = resid.std(0, unbiased=False) if c.objective == "regression" else torch.zeros(self.codec.dim)
        self.fit_info["final_loss"] = run.loss
        self.fit_info["residual_rms"] = float(resid.pow(2).mean().sqrt())

    def _body(self, cond: torch.Tensor) -> torch.Tensor:
        """The network's output for ``cond``; body=shared reads none of it (the output is the same
        learned vector for every task, through the layers' biases)."""
        return self.net(torch.zeros_like(cond) if self.config.body == "shared" else cond)

    def _sample_latent(self, cond, g, deterministic):
        z = self._body(cond)
        if deterministic or self.config.noise_scale == 0:
            return z
        return z + self.config.noise_scale * self.resid_std * torch.randn(z.shape, generator=g)

    def _decode(self, z, cond):
        params = self.codec.decode(z)
        return params if self.head is None else self.head(params, cond)

    def _model_state(self):
        head = {f"head.{k}": v for k, v in self.head.state_dict().items()} if self.head is not None else {}
        return {**{f"net.{k}": v for k, v in self.net.state_dict().items()}, "resid_std": self.resid_std, **head}

    def _load_model_state(self, state):
        cond_dim = state["net.0.weight"].shape[1]
        self._build(cond_dim, self.codec.dim)
        self.net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")}, strict=True)
        self.net.eval()
        self.resid_std = state["resid_std"]
        if self.config.head == "description":
            self.head = DescriptionHead.for_state(self.arch, cond_dim, {k[5:]: v for k, v in state.items()
                                                                        if k.startswith("head.")})


def family_pool(zoo: ZooData, size: int = 0, seed: int = 0, options: dict | None = None) -> ZooData:
    """The zoo data with its tasks replaced by every task of the family's allowed space (or, with
    ``size``, the zoo's tasks plus a seeded sample of the others, ``size`` in all) and all of its
    auxiliary tasks, each encoded by the zoo's (already fitted) condition encoder; weights stay the
    zoo's (they are only the frame: PCA basis, starting point). Held-out tasks are never in it.
    ``options`` override the family's recorded ones; rebuilding checks that the zoo's and the
    held-out tasks and the data fingerprint are unchanged, so they can only widen the pool."""
    from weightspace.tasks import family_from_dict

    if "family" not in zoo.source:
        raise WeightspaceError("hypernet task_pool=family needs the zoo's family; fit it on zoo data built by from_zoo.")
    record = zoo.source["family"]
    if options:
        if not isinstance(options, dict):
            raise WeightspaceError(f"hypernet pool_family must be a mapping of family options, not {options!r}.")
        record = {**record, "config": {**record["config"], **options}}
    family = family_from_dict(record)
    heldout = set(family.heldout_task_ids())
    ids = [t for t in family.training_task_ids() if t not in heldout]
    if size and len(ids) > size:
        own = {t.task_id for t in zoo.tasks or ()}
        others = [t for t in ids if t not in own]
        pick = torch.randperm(len(others), generator=torch.Generator().manual_seed(seed))[: max(size - len(own), 0)]
        keep = own | {others[i] for i in pick.tolist()}
        ids = [t for t in ids if t in keep]
    chosen = set(ids)
    ids += [t for t in family.auxiliary_task_ids() if t not in heldout and t not in chosen]
    tasks = [family.task(t) for t in ids]
    with torch.no_grad():
        conditions = zoo.encoder.encode_tasks(tasks) if zoo.encoder is not None else zoo.conditions[:0]
    return dataclasses.replace(zoo, tasks=tasks, conditions=conditions)
