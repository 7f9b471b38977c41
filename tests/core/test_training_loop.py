"""The one training loop: steps, schedule, clipping, progress, resume, data-parallel hooks."""

import math

import pytest
import torch

from weightspace.training_loop import Checkpoint, TrainState, adamw_cosine, train


def regression_problem(seed=0):
    """A linear least-squares fit with minibatches drawn from the state's generator."""
    w = torch.zeros(3, requires_grad=True)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    state = adamw_cosine([w], lr=0.1, steps=40, weight_decay=0.0, seed=seed)

    def objective(step):
        rows = torch.randint(0, 64, (8,), generator=state.generator)
        return ((x[rows] @ w - y[rows]) ** 2).mean()

    return w, state, objective


def test_steps_run_in_order_and_the_loss_falls():
    w, state, objective = regression_problem()
    seen, calls = [], []
    first = objective(0).item()
    run = train(state, lambda step: seen.append(step) or objective(step), 40,
                progress=lambda done, total, **info: calls.append((done, total, info)), progress_loss=True)
    assert seen == list(range(40)) and run.start == 0 and run.seconds > 0
    assert [c[:2] for c in calls] == [(i, 40) for i in range(1, 41)]
    assert calls[-1][2]["loss"] == run.loss and run.loss < first / 10


def test_progress_without_loss_takes_two_arguments_and_after_step_sees_every_step():
    _, state, objective = regression_problem()
    done = []
    train(state, objective, 5, progress=lambda d, t: None, after_step=done.append)
    assert done == [1, 2, 3, 4, 5]


def test_the_schedule_steps_once_per_step():
    _, state, objective = regression_problem()
    train(state, objective, 20)
    assert state.scheduler.last_epoch == 20
    assert state.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * (1 + math.cos(math.pi * 20 / 40)) / 2)


def test_clipping_bounds_the_gradient_norm():
    w = torch.zeros(4, requires_grad=True)
    state = TrainState([w], torch.optim.SGD([w], lr=1.0))
    train(state, lambda step: (w * 1000.0).sum(), 1, clip=0.5)
    assert w.grad.norm().item() == pytest.approx(0.5)
    assert w.norm().item() == pytest.approx(0.5)


def test_resume_from_a_checkpoint_ends_where_an_uninterrupted_run_ends(tmp_path):
    w_full, state, objective = regression_problem(seed=3)
    train(state, objective, 40)

    class Interrupt(Exception):
        pass

    w, state, objective = regression_problem(seed=3)
    ckpt = Checkpoint(tmp_path / "state", every=10, fingerprint={"run": "a"})

    def dies_at_25(step):
        if step == 25:
            raise Interrupt
        return objective(step)

    with pytest.raises(Interrupt):
        train(state, dies_at_25, 40, checkpoint=ckpt)
    w, state, objective = regression_problem(seed=3)  # a fresh process: nothing carried over
    again = Checkpoint(tmp_path / "state", every=10, fingerprint={"run": "a"})
    run = train(state, objective, 40, checkpoint=again)
    assert run.start == 20 and again.resumed_from == 20
    assert torch.equal(w, w_full)
    # a snapshot of other settings is not resumed
    _, state, objective = regression_problem(seed=3)
    other = Checkpoint(tmp_path / "state", every=10, fingerprint={"run": "b"})
    assert train(state, objective, 40, checkpoint=other).start == 0 and other.ignored


def test_data_parallel_objectives_return_a_share_and_only_the_main_process_reports(tmp_path):
    class FakeParallel:
        def __init__(self, main):
            self.is_main, self.shares = main, []

        def average_gradients(self, params, loss, share):
            self.shares.append(share)
            return float(loss.detach())

    for main in (True, False):
        w, state, objective = regression_problem()
        par, calls = FakeParallel(main), []
        ckpt = Checkpoint(tmp_path / str(main), every=2)
        run = train(state, lambda step: (objective(step), 0.25), 3, parallel=par, checkpoint=ckpt,
                    progress=lambda d, t: calls.append(d))
        assert par.shares == [0.25] * 3 and math.isfinite(run.loss)
        assert calls == ([1, 2, 3] if main else []) and ckpt.path.is_file() == main


def test_no_steps_leaves_the_parameters_and_reports_nan():
    w, state, objective = regression_problem()
    run = train(state, objective, 0)
    assert math.isnan(run.loss) and torch.equal(w, torch.zeros(3))
