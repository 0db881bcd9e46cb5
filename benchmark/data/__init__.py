"""Datasets: the immutable container, the readers, the synthetic generator and the name registry."""

from .dataset import MODALITIES, Dataset, from_triples
from .errors import DataError
from .registry import available, load_dataset, real_datasets
from .synthetic import PRESETS, SyntheticSpec, generate

__all__ = [
    "MODALITIES",
    "PRESETS",
    "DataError",
    "Dataset",
    "SyntheticSpec",
    "available",
    "from_triples",
    "generate",
    "load_dataset",
    "real_datasets",
]
