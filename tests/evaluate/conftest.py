import pytest
import torch


@pytest.fixture(scope="session")
def shared_zoo(tmp_path_factory):
    """A tiny shared-start digits-subsets zoo (6 tasks, 2 held out), built once for the tests
    that only read it (merging, cross-validated fine-tuning)."""
    from weightspace.nets import MLP
    from weightspace.tasks import make_family
    from weightspace.zoo.build import build_zoo
    from weightspace.zoo.recipe import TrainConfig

    torch.set_num_threads(1)
    family = make_family("digits-subsets", n_tasks=6, n_heldout=2)
    arch = MLP(input_shape=(1, 10, 10), n_classes=2, hidden=(8,))
    path = tmp_path_factory.mktemp("shared-subsets") / "zoo"
    build_zoo(path, family, arch, TrainConfig(steps=60), init="shared", pretrain_steps=40, workers=0, progress=False).close()
    return path
