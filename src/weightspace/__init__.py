"""weightspace: neural-network weights as a generative modality."""

__version__ = "0.1.0"

from weightspace.errors import WeightspaceError  # noqa: E402
from weightspace.spec import PermAxis, PermGroup, TensorSpec, WeightSpec  # noqa: E402

__all__ = ["WeightSpec", "TensorSpec", "PermGroup", "PermAxis", "WeightspaceError", "__version__"]
