"""Trainer tests need no database; they pin torch to one intra-op thread.

The test host is small and shared: with more threads than idle cores, OpenMP workers spin against each
other and a cnn_small step takes ~0.2 s instead of ~0.01 s. Workers should size threads the same way.
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
