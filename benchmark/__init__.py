"""The platform of the MMIL benchmark suite: data, graphs, the model contract, the shared
trainer, the full-ranking evaluator, run records, experiments and reports."""
__version__ = "0.1.0"
