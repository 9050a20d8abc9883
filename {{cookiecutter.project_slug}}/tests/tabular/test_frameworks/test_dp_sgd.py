"""DP-SGD (frameworks/dp_sgd.py): Opacus's wrapping of the PyTorch network, its budget and its refusals. Kept
with its module: the post-generation hook removes this file with dp_sgd.py from a project without PyTorch."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.tabular.config import Privacy


def rows(n: int):
    import torch

    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, 4, generator=generator), torch.randint(0, 2, (n,), generator=generator)


def test_dp_sgd_trains_the_plain_layers_in_place_within_the_budget():
    import torch
    from torch import nn

    from {{ cookiecutter.package_name }}.tabular.frameworks.pytorch import Network
    from {{ cookiecutter.package_name }}.tabular.training import dp_sgd

    network = Network(4, 2, [8], 0.1, True)
    before = {name: value.clone() for name, value in network.state_dict().items()}
    x, y = rows(2000)
    private = dp_sgd.wrap(network.body, torch.optim.SGD(network.parameters(), lr=0.1), x, y, Privacy(), 2, 100, 0)
    for _ in range(2):
        for batch_x, batch_y in private.batches():
            private.optimiser.zero_grad()
            nn.functional.cross_entropy(private.layers(batch_x), batch_y).backward()
            private.optimiser.step()
    assert 0 < private.spent() <= Privacy().target_epsilon
    private.layers.to_standard_module()
    assert network.state_dict().keys() == before.keys()  # the logged state dict: plain names, no wrapper
    assert any(not torch.equal(network.state_dict()[name], value) for name, value in before.items())


def test_dp_sgd_refuses_batch_norm_and_a_delta_not_below_one_over_rows():
    import torch
    from torch import nn

    from {{ cookiecutter.package_name }}.tabular.training import dp_sgd

    x, y = rows(500)
    mixing = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    with pytest.raises(UsageError, match="DP-SGD cannot train this network.*BatchNorm"):
        dp_sgd.wrap(mixing, torch.optim.SGD(mixing.parameters(), lr=0.1), x, y, Privacy(), 1, 50, 0)
    plain = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(UsageError, match=r"target_delta: 0.002 is not below 1/500"):
        dp_sgd.wrap(plain, torch.optim.SGD(plain.parameters(), lr=0.1), x, y, Privacy(target_delta=0.002), 1, 50, 0)
