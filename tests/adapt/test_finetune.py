import torch

from weightspace.adapt.finetune import FinetuneConfig, finetune, seconds_per_step
from weightspace.nets import MLP

ARCH = MLP(input_shape=(2,), n_classes=2, hidden=(8,))


def blobs(seed, n=64, flip=False):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) * 0.3 + (y[:, None].float() * 2 - 1) * torch.tensor([1.0, 0.0])
    return x, (1 - y) if flip else y


def stacked(*members):
    return {n: torch.stack([m[n] for m in members]) for n in members[0]}


def test_batched_members_train_as_if_alone():
    a, b = ARCH.init_params(0), ARCH.init_params(1)
    (xa, ya), (xb, yb) = blobs(0), blobs(1, n=40, flip=True)
    cfg = FinetuneConfig(batch_size=16)
    both = finetune(ARCH, stacked(a, b), [xa, xb], [ya, yb], cfg, 20, keep=[20], seed=3)
    alone = finetune(ARCH, stacked(a), [xa], [ya], cfg, 20, keep=[20], seed=3)
    for n in a:
        torch.testing.assert_close(both.snapshots[20][n][0], alone.snapshots[20][n][0], rtol=1e-5, atol=1e-6)


def test_accuracy_curve_and_snapshots():
    a, b = ARCH.init_params(0), ARCH.init_params(1)
    (xa, ya), (xb, yb) = blobs(0), blobs(1, flip=True)
    (ta, tya), (tb, tyb) = blobs(10, n=200), blobs(11, n=200, flip=True)
    run = finetune(ARCH, stacked(a, b), [xa, xb], [ya, yb], FinetuneConfig(lr=0.05, batch_size=32), 60,
                   test=([ta, tb], [tya, tyb]), eval_every=20, keep=[0, 10], seed=0)
    assert run.grid.tolist() == [0, 10, 20, 40, 60]
    assert run.test_acc.shape == (2, 5)
    assert (run.test_acc[:, -1] > 0.95).all()  # each member learned its own (opposite) labelling
    for n in a:
        assert torch.equal(run.snapshots[0][n][0], a[n])
    assert set(run.snapshots) == {0, 10}
    assert run.examples_per_step == 32 and run.train_seconds > 0


def test_small_data_caps_the_batch_and_timing_is_positive():
    x, y = blobs(0, n=10)
    run = finetune(ARCH, stacked(ARCH.init_params(0)), [x], [y], FinetuneConfig(batch_size=64), 5)
    assert run.examples_per_step == 10
    assert seconds_per_step(ARCH, ARCH.init_params(0), x, y, FinetuneConfig(), steps=5) > 0


def test_head_lr_gives_tensors_named_head_their_own_rate():
    from weightspace.nets.lora_minilm import LoRAMiniLM

    names = list(LoRAMiniLM().spec().names)
    from weightspace.adapt.finetune import _optimizer

    params = [torch.zeros(2, requires_grad=True) for _ in names]
    groups = _optimizer(FinetuneConfig(lr=1e-3, head_lr=0.1), params, names).param_groups
    assert [g["lr"] for g in groups] == [1e-3, 0.1]
    assert len(groups[1]["params"]) == 2  # head.weight and head.bias
    assert len(_optimizer(FinetuneConfig(lr=1e-3), params, names).param_groups) == 1  # head_lr 0: one rate
    assert FinetuneConfig.from_train_config({"lr": 3e-3, "head_lr": 3e-2, "steps": 100}).head_lr == 3e-2
