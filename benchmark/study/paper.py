"""Published numbers the suite reproduces, each with its source: every value of
``../shared/docs/paper-tables.md``, typed from it.

What is here (dataset names as in this suite: ``amazon-clothing``, ``amazon-sports``,
``amazon-baby``, ``tiktok``; rows lower case, Table 3's variants as the paper names them):

- `TABLE1`: the MMIL paper's (ACM MM 2024) Table 1, dataset -> users, items, interactions
  (train + test of the LATTICE split) and density (a fraction: the paper prints 0.026 %, stored
  as ``0.026e-2``).
- `TABLE2`: (dataset, model) -> recall@20 / precision@20 / ndcg@20. The three Amazon sets are
  the MMIL paper's Table 2 (its Sports and Baby rows VBPR...LATTICE are, digit for digit, the
  MMSSL paper's baseline rows; see `NOTES`). ``tiktok`` is not a dataset of the MMIL paper: its
  rows are the published references on our TikTok split (MMSSL paper, DiffMM paper, MMHCL's log),
  including models outside this suite (mmssl, bm3, diffmm, mmhcl). No published value exists there
  for micro, huign, hcgcn or mmil: those cells are absent and render as "n/a".
- `TABLE3`: (dataset, variant) -> recall@20 / ndcg@20, the MMIL paper's ablation (Table 3).
- `SEARCH_SPACE`: the paper's hyper-parameter grid (§5.1.4). Figures 2-4 are plots only; the
  paper prints no numbers for them (its text: Fig. 2, μ and θ, fluctuates with no steady trend,
  larger somewhat better; Fig. 3 rises then falls with τ, small γ better; Fig. 4 improves steadily
  with d, with diminishing gains).
- `SOURCES` / `source()`: where each entry comes from, a short string to cite in a report.
- `FLAGS` / `flagged()`: the misprints. Every value is kept AS PRINTED, never corrected: a value
  that cannot be right (20·P@20 < R@20, or "0.869" for a recall near .09) stays as printed and
  carries a flag note instead. The doc's ⚠ cells and the TikTok P@20 it notes as inconsistent
  (GRCN, MMGCL) are flagged, and so is TikTok VBPR's P@20 (.0018 with R@20 .0380, where
  P = R / 20), which the doc does not flag.
- `NOTES` / `DATASET_NOTES` / `notes()`: what the doc says about a row or a whole dataset (for
  TikTok: the published runs used three modalities, ours has two; how each reference selected
  its epoch).

How to read them (the doc's guidance): the published baseline rows were mostly run with little
tuning, so a baseline of ours above its published value is expected; one more than
`BELOW_PAPER_DEFECT` below it is a defect to explain. MMIL's claim is +5 % to +9 % over the best
baseline on every metric, and a full model that beats each ablation.
"""

from __future__ import annotations

Metrics = dict[str, float]
Table = dict[tuple[str, str], Metrics]

CLOTHING, SPORTS, BABY, TIKTOK = "amazon-clothing", "amazon-sports", "amazon-baby", "tiktok"
AMAZON = (CLOTHING, SPORTS, BABY)
R, P, N = "recall@20", "precision@20", "ndcg@20"

MMIL_PAPER = "MMIL paper (ACM MM 2024)"
MMSSL = "MMSSL paper (WWW 2023), TikTok table (HKUDS/MMSSL README)"
DIFFMM = "DiffMM paper (ACM MM 2024), best test epoch"
MMHCL = "MMHCL published best log (TOMM 2025), validation-selected"

# a baseline of ours more than this far below its published value is a defect to explain
BELOW_PAPER_DEFECT = 0.10

# our explanation of each (dataset, model) whose cell is more than BELOW_PAPER_DEFECT below the
# published value; a report names every such cell, with this reason or as unexplained
SHORTFALL_REASONS: dict[tuple[str, str], str] = {
    (TIKTOK, "vbpr"): (
        "the default reg_weight 1e-4 (MMRec's) lets the content half memorise the training pairs: "
        "with reg_weight 1.0, at a 30-epoch cap, validation and test Recall@20 reach .048 (#15); "
        "the grid search on validation covers it"
    ),
    (TIKTOK, "grcn"): (
        "the suite's GRCN routes as the paper writes (users attend over their items); the published "
        "numbers come from the released code, whose routing leaves the preferences at their "
        "initialisation (routing_reference_bug=True). At the reference default lr 1e-4 validation "
        "Recall@20 climbs by about .001 per 5 epochs (best .0377 at epoch 123); the search's choice "
        "(lr 1e-2, reg_weight 1e-3) reaches validation .0531; at that point with the released "
        "routing, seed 0 reaches validation .0675 and test Recall@20 .0763, 5 % below the published "
        "value (an ad-hoc run, #15). The published runs also had a 768-d text modality our copy lacks"
    ),
}

# --- Table 1 -------------------------------------------------------------------------------------

TABLE1: dict[str, dict[str, float]] = {
    CLOTHING: {"users": 39387, "items": 23033, "interactions": 237488, "density": 0.026e-2},
    SPORTS: {"users": 35598, "items": 18357, "interactions": 256308, "density": 0.039e-2},
    BABY: {"users": 19445, "items": 7050, "interactions": 139110, "density": 0.101e-2},
}

# --- Table 2 -------------------------------------------------------------------------------------

# as printed: Clothing R, P, N | Sports R, P, N | Baby R, P, N
_TABLE2_AMAZON: dict[str, tuple[float, ...]] = {
    "vbpr": (0.0481, 0.0023, 0.0205, 0.0582, 0.0031, 0.0265, 0.0486, 0.0026, 0.0213),
    "lightgcn": (0.0470, 0.0024, 0.0215, 0.0782, 0.0042, 0.0369, 0.0698, 0.0037, 0.0319),
    "mmgcn": (0.0501, 0.0024, 0.0221, 0.0638, 0.0034, 0.0279, 0.0640, 0.0032, 0.0284),
    "grcn": (0.0631, 0.0032, 0.0276, 0.0833, 0.0044, 0.0377, 0.0754, 0.0040, 0.0336),
    "mmgcl": (0.0693, 0.0036, 0.0307, 0.0875, 0.0046, 0.0409, 0.0758, 0.0041, 0.0331),
    "huign": (0.0735, 0.0043, 0.0313, 0.0865, 0.0047, 0.0412, 0.0761, 0.0042, 0.0336),
    "slmrec": (0.0724, 0.0041, 0.0325, 0.0829, 0.0043, 0.0376, 0.0765, 0.0043, 0.0325),
    "lattice": (0.0770, 0.0039, 0.0316, 0.0915, 0.0048, 0.0424, 0.0829, 0.0044, 0.0368),
    "micro": (0.0782, 0.0040, 0.0351, 0.0968, 0.0051, 0.0445, 0.0865, 0.0045, 0.0389),
    "hcgcn": (0.0810, 0.0041, 0.0370, 0.1032, 0.0055, 0.0478, 0.0922, 0.0048, 0.0415),
    "mmil": (0.0853, 0.0043, 0.0392, 0.1096, 0.0059, 0.0513, 0.0991, 0.0052, 0.0452),
}

# the published references on our TikTok split, as printed: R, N, P (the doc's column order), source
_TABLE2_TIKTOK: dict[str, tuple[float, float, float, str]] = {
    "bpr": (0.0346, 0.0130, 0.0017, MMSSL),  # printed as "BPR-MF"
    "lightgcn": (0.0653, 0.0282, 0.0033, MMSSL),
    "vbpr": (0.0380, 0.0134, 0.0018, MMSSL),  # P as in the doc; flagged here (R/20 = .0019)
    "mmgcn": (0.0730, 0.0307, 0.0036, MMSSL),
    "grcn": (0.0804, 0.0350, 0.0036, MMSSL),  # P as MMSSL prints it; flagged (R/20 = .0040)
    "lattice": (0.0843, 0.0367, 0.0042, MMSSL),
    "mmgcl": (0.0799, 0.0326, 0.0037, MMSSL),  # P as MMSSL prints it; flagged (R/20 = .0040)
    "slmrec": (0.0845, 0.0353, 0.0042, MMSSL),
    "mmssl": (0.0921, 0.0392, 0.0046, MMSSL),
    "bm3": (0.0957, 0.0404, 0.0048, DIFFMM),
    "diffmm": (0.1129, 0.0456, 0.0056, DIFFMM),
    "mmhcl": (0.1139, 0.0492, 0.0057, MMHCL),
}

TABLE2: Table = {}
for _model, _v in _TABLE2_AMAZON.items():
    for _i, _d in enumerate(AMAZON):
        TABLE2[(_d, _model)] = {R: _v[3 * _i], P: _v[3 * _i + 1], N: _v[3 * _i + 2]}
for _model, (_r, _n, _p, _) in _TABLE2_TIKTOK.items():
    TABLE2[(TIKTOK, _model)] = {R: _r, P: _p, N: _n}

# --- Table 3 -------------------------------------------------------------------------------------

# as printed: Clothing R, N | Sports R, N | Baby R, N
_TABLE3: dict[str, tuple[float, ...]] = {
    "mmil": (0.0853, 0.0392, 0.1096, 0.0513, 0.0991, 0.0452),
    "w/o IL": (0.0517, 0.0233, 0.0625, 0.0374, 0.0638, 0.0306),
    "w/o MA": (0.0784, 0.0365, 0.0977, 0.0452, 0.869, 0.0394),  # Baby R printed "0.869": flagged
    "w/o OC": (0.0828, 0.0384, 0.1070, 0.0496, 0.0962, 0.0435),
    "w/o IC": (0.0813, 0.0366, 0.0994, 0.0481, 0.0945, 0.0427),
}

TABLE3: Table = {}
for _variant, _v in _TABLE3.items():
    for _i, _d in enumerate(AMAZON):
        TABLE3[(_d, _variant)] = {R: _v[2 * _i], N: _v[2 * _i + 1]}

del _model, _v, _i, _d, _r, _n, _p, _variant

# --- the paper's search space (§5.1.4) -------------------------------------------------------------

SEARCH_SPACE: dict[str, tuple[float, ...]] = {
    "dim": (16, 32, 64, 128),
    "lr": (1e-5, 5e-5, 1e-4, 5e-4),
    "mu": (1e-4, 1e-3, 1e-2, 0.1, 1.0),
    "theta": (1e-4, 1e-3, 1e-2, 0.1, 1.0),
    "gamma": (1e-4, 1e-3, 1e-2, 0.1, 1.0),
    "tau": (0.005, 0.05, 0.5, 5.0, 50.0),
    "n_intents": (5, 10, 20, 50, 100),
}

# --- sources ---------------------------------------------------------------------------------------

_TABLE_NAMES = {"table1": TABLE1, "table2": TABLE2, "table3": TABLE3}

# (table name, dataset, row) -> source; Table 1 rows use row "" (one row per dataset)
SOURCES: dict[tuple[str, str, str], str] = {
    **{("table1", d, ""): f"{MMIL_PAPER}, Table 1" for d in TABLE1},
    **{("table2", d, m): f"{MMIL_PAPER}, Table 2" for d, m in TABLE2 if d != TIKTOK},
    **{("table2", TIKTOK, m): src for m, (*_, src) in _TABLE2_TIKTOK.items()},
    **{("table3", d, v): f"{MMIL_PAPER}, Table 3" for d, v in TABLE3},
}

# --- misprints: kept as printed, flagged -------------------------------------------------------------

_P_RULE = "20·P@20 ≥ R@20 must hold (both are averaged over the same test users)"
# (table name, dataset, row, metric) -> why the printed value cannot be right
FLAGS: dict[tuple[str, str, str, str], str] = {
    ("table2", CLOTHING, "vbpr", P): f"misprint in the paper: P@20 .0023 with R@20 .0481 breaks {_P_RULE}",
    ("table2", CLOTHING, "mmgcn", P): f"misprint in the paper: P@20 .0024 with R@20 .0501 breaks {_P_RULE}",
    ("table3", BABY, "w/o MA", R): 'printed as "0.869" (surely .0869); kept as printed',
    ("table2", TIKTOK, "grcn", P): (
        "MMSSL prints P@20 .0036, inconsistent with its R@20 .0804: every TikTok test user has "
        "exactly one test item, so P@20 = R@20 / 20 = .0040; kept as printed"
    ),
    ("table2", TIKTOK, "mmgcl", P): (
        "MMSSL prints P@20 .0037, inconsistent with its R@20 .0799: every TikTok test user has "
        "exactly one test item, so P@20 = R@20 / 20 = .0040; kept as printed"
    ),
    # not flagged in paper-tables.md; found by the 20·P >= R check of tests/study/test_paper.py
    ("table2", TIKTOK, "vbpr", P): (
        "P@20 .0018 (as paper-tables.md gives it) is inconsistent with R@20 .0380: every TikTok "
        "test user has exactly one test item, so P@20 = R@20 / 20 = .0019; not flagged in the doc, "
        "kept as given"
    ),
}

# --- notes -------------------------------------------------------------------------------------------

_MMSSL_ROWS = ("vbpr", "lightgcn", "mmgcn", "grcn", "mmgcl", "huign", "slmrec", "lattice")
# (dataset, row) -> what the doc says about that row
NOTES: dict[tuple[str, str], str] = {
    **{
        (d, m): "digit for digit the MMSSL paper's (WWW 2023) baseline row: runs by other groups, "
        "not by the MMIL authors"
        for d in (SPORTS, BABY)
        for m in _MMSSL_ROWS
    },
    (TIKTOK, "bpr"): 'printed as "BPR-MF"',
    (TIKTOK, "grcn"): FLAGS[("table2", TIKTOK, "grcn", P)],
    (TIKTOK, "mmgcl"): FLAGS[("table2", TIKTOK, "mmgcl", P)],
    (TIKTOK, "vbpr"): FLAGS[("table2", TIKTOK, "vbpr", P)],
    (TIKTOK, "mmssl"): "MMSSL's code then selected epochs on the test split",
    (TIKTOK, "bm3"): "from the DiffMM paper, best test epoch",
    (TIKTOK, "diffmm"): "best test epoch",
    (TIKTOK, "mmhcl"): "MMHCL's published best log, validation-selected",
}

# dataset -> what the doc says about every published value on it
DATASET_NOTES: dict[str, str] = {
    TIKTOK: (
        "TikTok is not a dataset of the MMIL paper; its references are the MMSSL paper's table on "
        "exactly this split (9,308 users, 6,710 items, 59,541 / 3,051 / 6,130 train / valid / test), "
        "except where noted. The published runs used three modalities (visual 128, acoustic 128, "
        "text 768); our copy has no text features, so a gap can come from the missing modality. "
        "Every test user has exactly one test item, so P@20 = R@20 / 20 and that source's NDCG "
        "equals the standard one. No published value exists on this split for MICRO, HUIGN, HCGCN "
        "or MMIL."
    ),
}


def _name(table: Table | dict[str, dict[str, float]] | str) -> str:
    if isinstance(table, str):
        if table not in _TABLE_NAMES:
            raise KeyError(f"no paper table {table!r}; known: {', '.join(_TABLE_NAMES)}")
        return table
    for name, t in _TABLE_NAMES.items():
        if t is table:
            return name
    raise KeyError("not one of paper.TABLE1, TABLE2, TABLE3")


def paper_value(table: Table, dataset: str, row: str, metric: str) -> float | None:
    """The printed value, or None where the source has none (rendered "n/a")."""
    return table.get((dataset, row), {}).get(metric)


def flagged(table: Table | str, dataset: str, row: str, metric: str) -> str | None:
    """The flag note of a value kept as printed although it cannot be right; None otherwise."""
    return FLAGS.get((_name(table), dataset, row, metric))


def source(table: Table | dict[str, dict[str, float]] | str, dataset: str, row: str = "") -> str | None:
    """Where an entry comes from (``row`` is ignored for Table 1); None where nothing is published."""
    name = _name(table)
    return SOURCES.get((name, dataset, "" if name == "table1" else row))


def shortfalls(dataset: str, model: str, ours: dict[str, float]) -> str | None:
    """A line naming each metric where ``ours`` is more than BELOW_PAPER_DEFECT below the published
    value (misprints aside), with the recorded reason or saying there is none yet; None if none."""
    below = []
    for metric, value in ours.items():
        theirs = paper_value(TABLE2, dataset, model, metric)
        if theirs is None or flagged(TABLE2, dataset, model, metric) or value >= theirs * (1 - BELOW_PAPER_DEFECT):
            continue
        below.append(f"{metric} {value:.4f} against {theirs:.4f} ({value / theirs - 1:+.0%})")
    if not below:
        return None
    return f"{dataset} / {model}: {', '.join(below)}: {SHORTFALL_REASONS.get((dataset, model), 'not explained yet')}"


def notes(dataset: str, row: str | None = None) -> list[str]:
    """The doc's notes on a dataset and, with ``row``, on that row."""
    out = [DATASET_NOTES[dataset]] if dataset in DATASET_NOTES else []
    if row is not None and (dataset, row) in NOTES:
        out.append(NOTES[(dataset, row)])
    return out
