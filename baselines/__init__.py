"""The baselines of the paper's Table 2, one file each; importing this package registers them."""

from importlib import import_module

_MODULES = ("bpr", "lightgcn", "vbpr", "mmgcn", "grcn", "lattice", "micro", "hcgcn", "slmrec", "mmgcl", "huign")

for _m in _MODULES:
    try:
        import_module(f"{__name__}.{_m}")
    except ModuleNotFoundError as e:  # a baseline not written yet is simply not registered
        if e.name != f"{__name__}.{_m}":
            raise
