"""The baselines, one file each; importing this package registers them: those of the paper's Table 2
and, after them, the stronger ones it left out (``baselines-extra.md``; opt-in with ``--models``)."""

from importlib import import_module

_MODULES = ("bpr", "lightgcn", "vbpr", "mmgcn", "grcn", "lattice", "micro", "hcgcn", "slmrec", "mmgcl", "huign")
_MODULES += ("bm3", "freedom", "lgmrec", "mmhcl", "mmssl", "diffmm")  # not in the paper's Table 2

for _m in _MODULES:
    try:
        import_module(f"{__name__}.{_m}")
    except ModuleNotFoundError as e:  # a baseline not written yet is simply not registered
        if e.name != f"{__name__}.{_m}":
            raise
