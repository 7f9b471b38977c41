"""Optional system data: tests that read it skip with a reason where it is absent (a fresh
machine without the Debian package still passes `make test`); .ci/run installs it and runs them."""

from pathlib import Path

import pytest

from weightspace.tasks.fmnist import FASHION_MNIST_DIR
from weightspace.tasks.wordnet import WORDNET_DIR

FMNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz")
FMNIST_INSTALLED = all((FASHION_MNIST_DIR / name).is_file() for name in FMNIST_FILES)

requires_fmnist = pytest.mark.skipif(
    not FMNIST_INSTALLED,
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist; .ci/run installs it)",
)

WORDNET_INSTALLED = (Path(WORDNET_DIR) / "data.noun").is_file()

requires_wordnet = pytest.mark.skipif(
    not WORDNET_INSTALLED,
    reason="WordNet 3.0 is not installed (apt-get install wordnet-base; .ci/run installs it)",
)
