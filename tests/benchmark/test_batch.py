import pytest
import torch

from benchmark.model import Batch


def ids(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)


def test_a_batch_keeps_its_examples() -> None:
    b = Batch(ids(0, 1), ids(2, 3), torch.tensor([[4, 5], [6, 7]]))
    assert b.users.tolist() == [0, 1] and b.neg.shape == (2, 2)


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="empty batch"):
        Batch(ids(), ids(), ids())


@pytest.mark.parametrize("pos, neg", [((2,), (4, 5)), ((2, 3), (4,))])
def test_a_batch_of_unequal_parts_is_refused(pos: tuple[int, ...], neg: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="batch of 2 users"):
        Batch(ids(0, 1), ids(*pos), ids(*neg))
