"""The model contract: a config, a loss on a batch, a full-ranking score. Nothing else.

A model is built from the `Dataset` and its `Config` (a dataclass whose every field has a default
and a one-line comment). It receives tensors and graphs from `benchmark`, never reads files, and
keeps every model-specific trick inside its own class.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .data import Dataset
from .data.errors import DataError


@dataclass(frozen=True)
class Batch:
    """One training step's examples: ``users[b]`` interacted with ``pos[b]``, not with ``neg[b]``.

    ``neg`` is (B,) with one negative per positive, (B, n) with several.
    """

    users: Tensor
    pos: Tensor
    neg: Tensor

    def __post_init__(self) -> None:
        # a model fails on these deep inside (MMIL: an IndexError in a reduction); say what is wrong
        n = len(self.users)
        if n == 0:
            raise ValueError("empty batch: no (user, positive, negative) examples")
        if len(self.pos) != n or len(self.neg) != n:
            raise ValueError(f"batch of {n} users with {len(self.pos)} positives and {len(self.neg)} negative rows")

    def to(self, device: torch.device) -> Batch:
        return Batch(self.users.to(device), self.pos.to(device), self.neg.to(device))


class Recommender(nn.Module):
    """Base class of every model of the suite.

    Subclasses set ``Config`` (a dataclass), optionally ``train_defaults`` (overrides of
    `benchmark.config.TrainConfig` that reproduce the model's source, e.g. its learning rate)
    and ``requires_features``; they implement `loss` and `score`.

    The score cache lives here, one for every model: a model whose scores need work that does
    not depend on the users (propagated tables, projected item vectors) returns it from
    `scoring_state`; the evaluator's `prepare_scoring` computes it once per evaluation, `score`
    reads it with `cached_scoring_state`, and `train()` drops it, since it goes stale with the
    first optimiser step.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    train_defaults: ClassVar[dict[str, Any]] = {}
    requires_features: ClassVar[bool] = False
    # submodules the model trains itself, with an optimiser of its own (MMSSL's discriminator,
    # DiffMM's denoisers): left out of `parameters()`, hence out of the trainer's optimiser and a
    # record's parameter count, but kept in `state_dict`, so checkpoints and the best state hold them
    # (hidden from the model's own listing only: a module wrapping the model walks its children)
    self_trained: ClassVar[tuple[str, ...]] = ()

    def __init__(self, data: Dataset, config: Any) -> None:
        super().__init__()
        if self.requires_features and not data.features:
            raise DataError(
                data.name,
                f"model {self.name!r} needs item features (visual, text or acoustic) and this dataset has "
                f"none (its source: {data.source})",
            )
        self.n_users = data.n_users
        self.n_items = data.n_items
        self.config = config

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Parameter]]:
        skip = tuple(f"{prefix}.{m}." if prefix else f"{m}." for m in self.self_trained)
        for name, p in super().named_parameters(prefix, recurse, remove_duplicate):
            if not (skip and name.startswith(skip)):
                yield name, p

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """``{"loss": total, <term>: value, ...}`` for one batch (terms are for logging)."""
        raise NotImplementedError

    def score(self, users: Tensor) -> Tensor:
        """Scores of every item for ``users``: (len(users), n_items); higher ranks first."""
        raise NotImplementedError

    _score_cache: Any = None

    def scoring_state(self) -> Any:
        """The user-independent part of scoring (None: nothing worth caching)."""
        return None

    def prepare_scoring(self) -> None:
        """Called once, under ``no_grad`` in eval mode, before a round of `score` calls."""
        self._score_cache = self.scoring_state()

    def cached_scoring_state(self) -> Any:
        """`scoring_state` as prepared for this evaluation; computed afresh outside one."""
        return self._score_cache if self._score_cache is not None else self.scoring_state()

    def train(self, mode: bool = True) -> Recommender:
        self._score_cache = None
        return super().train(mode)

    def start_epoch(self, epoch: int) -> None:
        """Called at the start of every training epoch (graph refresh, re-clustering...)."""

    def describe(self) -> dict[str, Any]:
        """Facts for the run record (which modalities were used, ...)."""
        return {}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


class DotProductRecommender(Recommender):
    """A model that scores by <user vector, item vector>, both from one full ``forward()`` pass
    whose first two outputs are (user table, item table); that pass is the scoring state."""

    def forward(self) -> tuple[Tensor, ...]:  # type: ignore[override]
        raise NotImplementedError

    def scoring_state(self) -> tuple[Tensor, Tensor]:
        u, i = self.forward()[:2]
        return u, i

    def score(self, users: Tensor) -> Tensor:
        u, i = self.cached_scoring_state()
        return u[users] @ i.T


def id_embeddings(n_users: int, n_items: int, dim: int) -> tuple[nn.Embedding, nn.Embedding]:
    """User and item ID tables, xavier-uniform (the init most sources use)."""
    user, item = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
    nn.init.xavier_uniform_(user.weight)
    nn.init.xavier_uniform_(item.weight)
    return user, item
