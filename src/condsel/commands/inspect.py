"""``condsel inspect``: what an extraction store holds and what failed."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("inspect", help="summarise an extraction store (videos, models, failures)",
                       description="Summarise a store written by `condsel extract`: models, videos, per-model "
                       "array shapes, size on disk and failures. --json prints "
                       '{"models": [...], "videos": [...], "failures": [{"video": ..., "error": ...}]}.')
    p.add_argument("store", metavar="STORE", help="store directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from condsel.extract.store import Store, video_key

    store = Store.open(args.store)
    names = store.video_names()
    stored = {video_key(n) for n in names}
    failures = [f for f in store.failures() if video_key(f.video) not in stored]
    if args.json:
        doc = {"models": store.models, "videos": names, "failures": [{"video": f.video, "error": f.error} for f in failures]}
        print(json.dumps(doc, indent=1))
        return 0
    meta = store.meta
    per_clip = meta["settings"]["per_clip_seconds"]
    first = next(store.entries(), {})
    rows = sum(len(e["windows"]) for e in store.entries()) if per_clip else len(names)
    print(f"store {store.root}: {len(names)} videos, {len(failures)} failures, {store.size_bytes() / 1e6:.1f} MB on disk")
    print(f"pool {meta['pool']['source']} (backbone {store.backbone}); views aggregated by mean {meta['settings']['aggregate']}")
    if per_clip:
        print(f"per-clip windows of {per_clip} s: {rows} windows in all")
    print(f"GFLOPs {meta['gflops_unit']}; {meta['flop_convention']}")
    for m in store.models:
        arrays = [f"logits {_shape(first, f'logits/{m}', rows)}"]
        if f"views/{m}" in first:
            arrays.append(f"views {_shape(first, f'views/{m}', rows)}")
        if m == store.backbone:
            arrays.append(f"features {_shape(first, 'features', rows)}")
        print(f"  {m:<16} {meta['gflops'][m]:10.4g} GFLOPs  " + ", ".join(arrays))
    for f in failures:
        print(f"  failed: {f.error}")
    return 0


def _shape(entry: dict, key: str, rows: int) -> str:
    """Shape of ``key`` over the whole store: rows (videos or windows) x the per-row shape."""
    if key not in entry:
        return f"({rows}, ?)"
    return str((rows, *entry[key].shape[1:]))
