"""Fixtures shared by the audit tests."""
import pytest
import torch


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (small models train faster and more repeatably on a shared CPU)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
