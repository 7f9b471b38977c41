"""Training beyond one process: data-parallel generator fitting under torchrun (gloo or NCCL).

The data-parallel helpers live with the generators that use them (generate/data_parallel.py);
this package is the torchrun entry point above them. Zoo building on a Ray cluster lives with
the other zoo backends (weightspace.zoo.ray_backend).

    torchrun --standalone --nproc_per_node=2 -m weightspace.distributed.train_generator \\
        ZOO --generator token-flow --out GEN
"""

from weightspace.generate.data_parallel import DataParallel, init_from_torchrun, launched_by_torchrun, shutdown

__all__ = ["DataParallel", "init_from_torchrun", "launched_by_torchrun", "shutdown"]
