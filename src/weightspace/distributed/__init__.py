"""Training beyond one process: data-parallel generator fitting under torchrun (gloo or NCCL).

Zoo building on a Ray cluster lives with the other zoo backends (weightspace.zoo.ray_backend).

    torchrun --standalone --nproc_per_node=2 -m weightspace.distributed.train_generator \\
        ZOO --generator token-flow --out GEN
"""

from weightspace.distributed.ddp import DataParallel, init_from_torchrun, launched_by_torchrun, shutdown

__all__ = ["DataParallel", "init_from_torchrun", "launched_by_torchrun", "shutdown"]
