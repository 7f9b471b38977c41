"""token-flow: conditional flow matching on layer tokens, for networks of millions of weights.

The other trained generators work in a PCA latent of the whole zoo: an (M, D) SVD and a k x D
basis (k < M), so their cost grows with members x weights and what they emit stays in the span
of the zoo. Here each network is cut into tokens (encode.tokens: every tensor flattened and cut
into chunks of ``chunk`` weights, tagged with its layer and position) and one small network,
shared by all tokens, learns the flow-matching velocity of a token from

    (noisy token x_t, time t, layer embedding, learned per-token embedding, task condition).

Nothing in the model is D x D or M x D: its size is tokens x ``embed`` (the per-token table)
plus a fixed MLP, so memory grows linearly with the number of weights. A training step draws
``batch_size`` members and ``tokens_per_member`` of their tokens, so its cost does not depend on
the network size at all; sampling integrates ``sample_block`` tokens at a time.

Weights are normalised per tensor (encode.normalize) and then standardised per entry with the
zoo's mean and spread of that weight (two more D-sized vectors, as PCA keeps a D-sized mean):
the flow models each weight's deviation from the zoo average in units of its spread, so the
zero-noise sample (``deterministic=True``) starts at the zoo's mean network, and for a zoo from
a shared start the flow only has to learn how the task moves each token. Tokens are generated
independently given the condition (the per-token embedding carries where a token sits, the
condition which task it is for): correlations between tokens are only those the condition
explains, the price of linear scaling (SANE and p-diff add attention or a latent across tokens).

Training is data-parallel under torchrun (weightspace.distributed): every process draws the
whole step's randomness and computes the loss on its share of the members.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from weightspace.config import option
from weightspace.generate.data_parallel import DataParallel
from weightspace.generate.denoiser import DenoiserTrunk, guided
from weightspace.generate.flow import integrate
from weightspace.encode.codec import WeightCodec
from weightspace.encode.modules import seeded
from weightspace.encode.tokens import LayerTokenizer
from weightspace.errors import WeightspaceError
from weightspace.generate.base import Generator, ZooData
from weightspace.generate.conditions import ConditionSource
from weightspace.generate.registry import register
from weightspace.training_loop import adamw_cosine, train

SOLVERS = ("euler", "midpoint")
_MIN_SPREAD = 1e-4  # a weight equal in every member (in per-tensor normalised units) keeps this scale


@dataclass
class TokenFlowConfig:
    chunk: int = option(64, "weights per token: every tensor is flattened and cut into chunks of this size")
    embed: int = option(64, "size of the learned per-token embedding (its table is tokens x embed: linear in weights)", min=1)
    hidden: int = option(128, "width of the per-token network", min=1)
    depth: int = option(3, "residual blocks of the per-token network", min=0)
    steps: int = option(2000, "training steps", min=1)
    lr: float = option(3e-3, "AdamW learning rate (cosine decay to 0); the per-token table needs the larger step")
    batch_size: int = option(16, "zoo members per step (split over the processes under torchrun)")
    tokens_per_member: int = option(512, "tokens of each member drawn per step; 0 = all (a step's memory is batch x this)", min=0)
    cond_dropout: float = option(0.1, "probability of training on the null condition (enables guidance)")
    guidance: float = option(1.0, "classifier-free guidance scale at sampling; 1 = plain conditional model")
    sample_steps: int = option(20, "solver steps when sampling", min=1)
    solver: str = option("midpoint", "euler (1 network call per step) or midpoint (2 calls, second order)",
                         choices=SOLVERS)
    sample_block: int = option(4096, "tokens integrated together when sampling (bounds sampling memory)", min=1)
    resample_support: bool = option(True, "draw fresh support sets from each zoo task's training data every step")
    support_draws: int = option(16, "pre-encoded support draws per member for training-free encoders")
    device: str = option("cpu", "cpu or cuda to train on (under torchrun, cuda means each process's own GPU)")
    seed: int = option(0, "seed of initialisation, batches, noise and support draws")


class TokenDenoiser(DenoiserTrunk):
    """v(x_t, t, token, condition) for tokens (B, R, chunk) of B members, R tokens each."""

    def __init__(self, chunk: int, layer_ids: torch.Tensor, cond_dim: int, embed: int, hidden: int, depth: int,
                 time_freqs: int = 16):
        super().__init__()
        # token index -> tensor index; rebuilt from the weight space, so not saved
        self.register_buffer("layer_ids", layer_ids.clone(), persistent=False)
        self.layer_emb = nn.Embedding(int(layer_ids.max()) + 1, embed)
        # Starts at zero: every token begins as its layer's shared model and specialises from there.
        self.token_emb = nn.Parameter(torch.zeros(len(layer_ids), embed))
        self.token_proj = nn.Linear(embed, hidden)
        self._build_trunk(chunk, cond_dim, hidden, depth, time_freqs)  # after the token tables: their init comes first

    def forward(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor, cond: torch.Tensor,
                drop: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, R, chunk), t (B, R), tokens (B, R) or (R,) indices, cond (B, C), drop (B,) bool."""
        e, c = self._time_and_condition(t, cond, drop)
        e = e + c[:, None, :] + self.token_proj(self.layer_emb(self.layer_ids[tokens]) + self.token_emb[tokens])
        return self._trunk(x, e)


@register("token-flow", pretty="flow matching on layer tokens",
          paper="Flow Matching (Lipman et al. 2023) on layer tokens, as in SANE (Schürholt et al. 2024) and "
                "p-diff (Wang et al. 2024); classifier-free guidance (Ho & Salimans 2022)")
class TokenFlowGenerator(Generator):
    Config = TokenFlowConfig
    data_parallel = True  # its training loop shares each step's members over torchrun processes

    def _build(self, cond_dim: int) -> None:
        c = self.config
        self.tokenizer = LayerTokenizer(self.spec, c.chunk)
        with seeded(c.seed):
            self.net = TokenDenoiser(c.chunk, self.tokenizer.layer_ids, cond_dim, c.embed, c.hidden, c.depth)

    def _fit(self, zoo: ZooData, progress=None) -> None:
        c = self.config
        if not 0 <= c.cond_dropout < 1:
            raise WeightspaceError(f"token-flow: cond_dropout must be in [0, 1), got {c.cond_dropout}.")
        par = DataParallel.current()
        if c.batch_size < par.world:
            raise WeightspaceError(f"token-flow: batch_size {c.batch_size} is smaller than the {par.world} processes; "
                                   "give every process at least one member per step.")
        device = par.device(c.device)
        self.codec = WeightCodec.fit(zoo.spec, zoo.params, latent="none")  # per-tensor normalisation only
        self._build(zoo.encoder.dim if zoo.encoder else zoo.conditions.shape[1])
        tokens = self.tokenizer.tokenize(self.codec.normalizer.normalize(zoo.params))  # (M, T, chunk), 0-padded
        self.entry_mean = tokens.mean(0)
        self.entry_std = tokens.std(0, unbiased=False).clamp_min(_MIN_SPREAD)
        tokens.sub_(self.entry_mean).div_(self.entry_std)  # in place: the zoo's tokens are the biggest tensor here
        real = self.tokenizer.mask  # (T, chunk): False on padding, which the loss ignores
        n_tokens = self.tokenizer.n_tokens
        per_member = n_tokens if c.tokens_per_member == 0 else min(c.tokens_per_member, n_tokens)
        source = ConditionSource(zoo, c.resample_support, c.support_draws, c.seed)
        if device.type != "cpu" and source.parameters():
            raise WeightspaceError(f"token-flow trains on {device} only without a trainable condition encoder; "
                                   "use --condition support-probe or descriptor, or device=cpu.")
        self.net.to(device)
        params = list(self.net.parameters()) + source.parameters()
        par.broadcast(params)
        state = adamw_cosine(params, c.lr, c.steps, 1e-4, c.seed)
        g = state.generator

        def flow_matching(step: int) -> tuple[torch.Tensor, float]:
            # The whole step's randomness, identical in every process (see generate.data_parallel).
            b = c.batch_size
            members = torch.randint(0, len(zoo), (b,), generator=g)
            which = (torch.randint(0, n_tokens, (b, per_member), generator=g) if per_member < n_tokens
                     else torch.arange(n_tokens).expand(b, n_tokens))
            drop = torch.rand(b, generator=g) < c.cond_dropout
            cond = source(members, g)
            x0 = torch.randn(b, per_member, c.chunk, generator=g)
            t = torch.rand(b, per_member, generator=g)
            mine = par.rows(b)  # this process's members of the step
            x1 = tokens[members[mine, None], which[mine]]
            xt = (1 - t[mine, :, None]) * x0[mine] + t[mine, :, None] * x1
            pred = self.net(xt.to(device), t[mine].to(device), which[mine].to(device), cond[mine].to(device),
                            drop[mine].to(device))
            mask = real[which[mine]].to(device)
            loss = ((pred - (x1 - x0[mine]).to(device)) ** 2 * mask).sum() / mask.sum()
            return loss, float(mask.sum()) / float(real[which].sum())

        self.net.train()
        source.train(True)
        value = train(state, flow_matching, c.steps, clip=1.0, parallel=par, progress=progress, progress_loss=True).loss
        self.net.to("cpu").eval()
        source.train(False)
        self.fit_info.update({"final_loss": value, "tokens": n_tokens, "processes": par.world})

    def _sample_latent(self, cond, g, deterministic):
        c = self.config
        n, n_tokens = len(cond), self.tokenizer.n_tokens
        shape = (n, n_tokens, c.chunk)
        x = torch.zeros(shape) if deterministic else torch.randn(shape, generator=g)
        # Tokens are independent given the condition, so each block is integrated on its own.
        for start in range(0, n_tokens, c.sample_block):
            ids = torch.arange(start, min(start + c.sample_block, n_tokens))
            velocity = lambda xb, t, ids=ids: guided(self.net, c.guidance, xb, t, ids, cond)  # noqa: E731
            x[:, start:start + len(ids)] = integrate(velocity, x[:, start:start + len(ids)], c.sample_steps, c.solver)
        x = x * self.entry_std + self.entry_mean
        return x.reshape(n, -1)[:, self.tokenizer.mask.reshape(-1)]  # drop padding: flat, in spec order

    def _model_state(self):
        return {**{f"net.{k}": v for k, v in self.net.state_dict().items()},
                "entry_mean": self.entry_mean, "entry_std": self.entry_std}

    def _load_model_state(self, state):
        self._build(state["net.cond.weight"].shape[1])
        self.entry_mean, self.entry_std = state["entry_mean"], state["entry_std"]
        self.net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")}, strict=True)
        self.net.eval()
