"""Hand-made run records for tests of rendering, estimates and significance."""

from __future__ import annotations

from benchmark.study.record import DatasetInfo, Record
from benchmark.study.spec import RunSpec


def fake_record(
    dataset: str,
    model: str,
    seed: int,
    recall: float,
    per_user: list[float],
    variant: str | None = None,
    config: dict | None = None,
) -> Record:
    """A record whose test Recall@20 is ``recall`` (precision a tenth, NDCG half of it) with
    per-user recall ``per_user``; per-user precision is not kept, as in older records."""
    return Record(
        spec=RunSpec(dataset, model, seed, config=config or {}),
        key=f"{dataset}-{model}-{seed}",
        config=dict(config or {}),
        train_config={},
        dataset=DatasetInfo(dataset, len(per_user), 10, 1, 1, 1, 2, 0.1, "none", True, "x"),
        model={"name": model, "variant": variant or model},
        epochs_capped=False,
        code_version="test",
        device="cpu",
        hardware="test",
        torch_threads=1,
        history=[],
        epochs_run=1,
        stopped_early=False,
        best_epoch=1,
        valid={"recall@20": recall},
        test={"recall@20": recall, "precision@20": recall / 10, "ndcg@20": recall / 2},
        mask_valid_at_test=False,
        test_per_user={"recall@20": per_user, "ndcg@20": [x / 2 for x in per_user]},
        test_users=len(per_user),
        seconds_per_epoch=1.0,
        eval_seconds=0.0,
        total_seconds=1.0,
        peak_memory_mb=0.0,
        finished="",
    )
