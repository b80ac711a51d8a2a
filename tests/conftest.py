import torch

# Two cores on CI; keep torch from oversubscribing them when pytest runs in one process.
torch.set_num_threads(2)
