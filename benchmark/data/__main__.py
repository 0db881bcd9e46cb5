"""``python -m benchmark.data``: build datasets from raw files, align feature files, print Table 1.

    python -m benchmark.data prepare amazon --category Baby --reviews reviews_Baby_5.json.gz \\
        --meta meta_Baby.json.gz --images image_features_Baby.b --out data/baby
    python -m benchmark.data prepare movielens --folder ../shared/data/ml-100k
    python -m benchmark.data align-features --features mmrec/baby/image_feat.npy \\
        --key-map ../shared/data/amazon-baby/item_asin.tsv --out data/amazon-baby/image_feat.npy
    python -m benchmark.data stats amazon-baby amazon-sports amazon-clothing --data-root ../shared/data

On bad input: exit status 2 and one ``error:`` line naming the file, the row and the problem.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..paths import default_data_root
from .errors import DataError
from .text_encoder import EncoderUnavailable


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmark.data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    prep = sub.add_parser("prepare", help="build a dataset from raw files")
    kinds = prep.add_subparsers(dest="kind", required=True)
    am = kinds.add_parser("amazon", help="an Amazon 2014 category, into the MMRec layout")
    am.add_argument("--category", required=True, help="Baby, Sports_and_Outdoors, Clothing_Shoes_and_Jewelry ...")
    am.add_argument("--reviews", type=Path, required=True, help="reviews JSON lines (.json or .json.gz) or ratings CSV")
    am.add_argument("--meta", type=Path, help="metadata lines (JSON or Python literals); gives text features")
    am.add_argument("--images", type=Path, help="image feature binary (10-byte ASIN + float32 vector, repeated)")
    am.add_argument("--out", type=Path, required=True, help="output folder (its name is the dataset's name)")
    am.add_argument(
        "--split",
        choices=["lattice", "mmrec"],
        default="lattice",
        help="lattice: per-user random, as the paper's splits (default); mmrec: chronological 8:1:1",
    )
    am.add_argument("--seed", type=int, default=0, help="seed of the lattice split (default 0)")
    am.add_argument("--k", type=int, default=5, help="k of the k-core filter (default 5)")
    am.add_argument("--image-dim", type=int, default=4096, help="floats per image record (default 4096)")
    am.add_argument("--no-text", action="store_true", help="no text features even with --meta")
    am.add_argument("--device", default="cpu", help="device of the text encoder (default cpu)")
    am.add_argument("--force", action="store_true", help="replace a non-empty --out")
    ml = kinds.add_parser("movielens", aliases=["ml-100k"], help="cache ML-100K's text and attribute features")
    ml.add_argument("--folder", type=Path, required=True, help="the folder holding u.data and u.item")
    ml.add_argument("--device", default="cpu", help="device of the text encoder (default cpu)")

    al = sub.add_parser("align-features", help="reorder a feature matrix into a split's item order")
    al.add_argument(
        "--features", type=Path, required=True, help=".npy feature matrix, one row per item of its id space"
    )
    al.add_argument(
        "--key-map",
        type=Path,
        required=True,
        help="TSV with header: itemID of the split, and its key (e.g. item_asin.tsv)",
    )
    al.add_argument(
        "--row-keys",
        type=Path,
        help="TSV with header: itemID = row of --features, and its key (e.g. MMRec's "
        "i_id_mapping.csv); default: rows are the key map's keys in sorted order",
    )
    al.add_argument("--out", type=Path, required=True, help="output .npy")

    st = sub.add_parser("stats", help="print the Table 1 row of datasets")
    st.add_argument("names", nargs="+", help="dataset names (under --data-root), presets, or dataset folders")
    st.add_argument("--data-root", type=Path, default=default_data_root(), help="default: data/ in the repo")
    st.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    st.add_argument(
        "--check", action="store_true", help="exit 1 unless every dataset the paper has matches its Table 1 row"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.command == "prepare":
        from .prepare import prepare_amazon, prepare_movielens, stderr_log

        if args.kind == "amazon":
            s = prepare_amazon(
                args.category,
                args.reviews,
                args.out,
                args.meta,
                args.images,
                args.split,
                args.seed,
                args.k,
                text=not args.no_text,
                device=args.device,
                image_dim=args.image_dim,
                force=args.force,
                log=stderr_log,
            )
            i = s["interactions"]
            print(
                f"{s['dataset']}: {s['users']:,} users, {s['items']:,} items, train/valid/test "
                f"{i['train']:,}/{i['valid']:,}/{i['test']:,} (train + test {i['train+test']:,}); "
                f"features: {', '.join(s['features']) or 'none'}; see {args.out / 'stats.json'}"
            )
        else:
            out = prepare_movielens(args.folder, args.device, log=stderr_log)
            print(f"ML-100K text and attribute features cached in {out}")
        return 0
    if args.command == "align-features":
        from .align import align_feature_file

        r = align_feature_file(args.features, args.key_map, args.out, args.row_keys)
        print(
            f"wrote {args.out}: {r['items']:,} items from {r['feature_rows']:,} feature rows "
            f"({r['rows_unused']:,} rows unused)"
        )
        return 0
    from .stats import format_table1, table1

    df = table1(args.names, args.data_root)
    if args.json:
        print(df.to_json(orient="records", indent=2))
    else:
        print(format_table1(df))
    if args.check:
        known = df["matches_paper"].dropna()
        return 0 if bool(known.all()) else 1
    return 0


if __name__ == "__main__":
    debug = "--debug" in sys.argv
    try:
        sys.exit(main())
    except (DataError, EncoderUnavailable, ValueError, FileNotFoundError) as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
