import pytest
import torch

for module in ("fastapi", "uvicorn", "httpx"):  # the optional extra `serve`
    pytest.importorskip(module, reason=f"serving needs the optional package {module} (pip install 'weightspace[serve]')")

from serve_helpers import TOKEN, build_tiny_zoo, family, fit_generator, running  # noqa: E402

torch.set_num_threads(1)  # two cores shared by everything on the test machine


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    return build_tiny_zoo(tmp_path_factory.mktemp("serve") / "zoo")


@pytest.fixture(scope="session")
def support_gen(zoo, tmp_path_factory):
    return fit_generator(zoo, tmp_path_factory.mktemp("gen") / "support", "support")


@pytest.fixture(scope="session")
def descriptor_gen(zoo, tmp_path_factory):
    return fit_generator(zoo, tmp_path_factory.mktemp("gen") / "descriptor", "descriptor")


@pytest.fixture(scope="session")
def fam():
    return family()


@pytest.fixture(scope="session")
def server(support_gen):
    """The support-set generator behind a token, 2 threads, 256 KiB request limit."""
    with running(support_gen, token=TOKEN, threads=2, max_request_bytes=256 * 1024) as base:
        yield base
