"""mdrn-fast data: list the standard image sets and fetch them (checksummed) from their original repositories."""
from __future__ import annotations

HELP = "the standard image sets: `data list` shows them, `data fetch [SET...]` downloads them (SHA-256 checked)"


def add_arguments(parser) -> None:
    from mdrn_fast.datasets import MANIFEST

    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="each set: what it is, its size, whether it is here")
    listing.add_argument("--verify", action="store_true", help="check every file's SHA-256 (slower)")
    fetch = sub.add_parser("fetch", help="download sets into the data folder (all when none is named)")
    fetch.add_argument("sets", nargs="*", metavar="SET",
                       help=f"any of {', '.join(MANIFEST)}")
    for p in (listing, fetch):
        p.add_argument("--data", help="the data folder (default: $MDRN_FAST_DATA, else ~/.cache/mdrn_fast/data)")


def run(args) -> int:
    from mdrn_fast.datasets import MANIFEST, default_root, fetch, folder, status
    from mdrn_fast.errors import UsageError

    root = args.data or default_root()
    if args.action == "list":
        print(f"data folder: {root}")
        print(f"| set | files | MB | here | what | source |\n|---|---|---|---|---|---|")
        incomplete = []
        for name, entry in MANIFEST.items():
            have, total = status(name, root, verify=args.verify)
            mb = sum(f[2] for f in entry["files"]) / 1e6
            here = "yes" if have == total else f"{have} of {total}" if have else "no"
            if have != total:
                incomplete.append(name)
            print(f"| {name} | {total} | {mb:.1f} | {here} | {entry['about']} | "
                  f"github.com/{entry['repo']} @ {entry['commit'][:7]} |")
        if incomplete:
            print(f"\nmissing: `mdrn-fast data fetch {' '.join(incomplete)}` (into "
                  f"{folder('Set12', root).parent.parent})")
        else:
            print("\nevery set is here" + (" and verified" if args.verify else ""))
        return 0
    unknown = [s for s in args.sets if s not in MANIFEST]
    if unknown:
        raise UsageError(f"unknown set(s) {', '.join(unknown)}; the sets are {', '.join(MANIFEST)}")
    for path in fetch(args.sets, root):
        print(f"ok: {path}")
    return 0
