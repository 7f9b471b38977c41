"""Generate: conditional generators of weights behind one contract, registered by name.

    from weightspace.generate import make_generator, load_generator, generate_weights, zoo_data
    data = zoo_data.from_zoo(zoo, condition="support")
    gen = make_generator("hypernet", steps=2000).fit(data)
    out = generate_weights(gen, (support_x, support_y), n=4, best_of=8)
"""

from weightspace.generate import zoo_data
from weightspace.generate.base import Generator, ZooData
from weightspace.generate.diffusion import DiffusionGenerator
from weightspace.generate.flow import FlowGenerator
from weightspace.generate.hypernet import HypernetGenerator
from weightspace.generate.pca_gaussian import PCAGaussianGenerator
from weightspace.generate.registry import GENERATORS, load_generator, make_generator, register
from weightspace.generate.sampling import Generated, generate_weights, support_scores
from weightspace.generate.tokens_scale import TokenFlowGenerator

__all__ = [
    "Generator", "ZooData", "GENERATORS", "register", "make_generator", "load_generator",
    "generate_weights", "support_scores", "Generated", "zoo_data", "PCAGaussianGenerator", "HypernetGenerator",
    "FlowGenerator", "DiffusionGenerator", "TokenFlowGenerator",
]
