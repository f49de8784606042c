"""The byte-mask dropout: its rate, its scaling, its repeatability."""

import pytest
import torch

from voxgate.core.dropout import dropout, keep_fraction


def test_inactive_or_zero_rate_is_the_identity():
    x = torch.randn(4, 5)
    assert dropout(x, 0.3, False) is x
    assert dropout(x, 0.0, True) is x


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_drops_the_stated_fraction_and_keeps_the_mean(p):
    torch.manual_seed(0)
    x = torch.ones(400_000)
    y = dropout(x, p, True)
    kept = (y != 0).float().mean().item()
    assert kept == pytest.approx(keep_fraction(p), abs=0.003)
    assert keep_fraction(p) == pytest.approx(1 - p, abs=1 / 512)
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)  # inverted dropout: unbiased
    assert torch.unique(y).tolist() == [0.0, pytest.approx(1 / keep_fraction(p))]


def test_every_byte_position_is_random():
    # int64.random_() leaves the top bit of each word at zero: a mask from all 8 bytes
    # would keep every 8th element far more often. Check position by position.
    torch.manual_seed(1)
    y = dropout(torch.ones(8 * 50_000), 0.5, True).view(-1, 8)
    per_position = (y != 0).float().mean(dim=0)
    assert torch.all((per_position - 0.5).abs() < 0.02), per_position


def test_seeded_masks_repeat_and_gradients_flow():
    x = torch.randn(64, 32, requires_grad=True)
    torch.manual_seed(7)
    a = dropout(x, 0.3, True)
    torch.manual_seed(7)
    b = dropout(x, 0.3, True)
    assert torch.equal(a, b)
    a.sum().backward()
    assert torch.equal(x.grad != 0, a != 0)


def test_full_rate_and_bf16():
    x = torch.randn(10, 10)
    assert torch.count_nonzero(dropout(x, 1.0, True)) == 0
    y = dropout(x.bfloat16(), 0.3, True)
    assert y.dtype == torch.bfloat16 and y.shape == x.shape
