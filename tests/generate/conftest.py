import torch

# Two cores are shared by everything on the test machine: one thread per process is the fast setting.
torch.set_num_threads(1)
