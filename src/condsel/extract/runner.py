"""Run a pool over a manifest into a store: sharded by rank, resumable, bad files recorded.

Order of work on every rank: rank 0 opens (or creates) the store, drops the
failure records of an earlier attempt at this manifest and records the
manifest's unreadable rows; all ranks then list the completed videos, wait
for each other, and each takes every ``world_size``-th remaining video. The
listing happens before anyone writes, so all ranks agree on what remains and
the shards are disjoint and cover it. After a final barrier every rank reads
the outcome from the store, so all of them exit with the same status. Every
rank holds the store ``in_use`` while it writes, so that another run joining
the store meanwhile leaves its writes in progress alone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from condsel._progress import progress_bar

from condsel.models.costs import FLOP_CONVENTION
from condsel.extract.dataset import VideoViews, iterate
from condsel.extract.distributed import DistContext
from condsel.extract.inference import video_outputs
from condsel.extract.manifest import Manifest
from condsel.extract.pool import ExtractionPool
from condsel.extract.store import Failure, Store, video_key
from condsel.pool.inference import AGGREGATIONS
from condsel.pool.views import ViewPlan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractSettings:
    """Everything besides the pool that changes the stored numbers (part of the store's identity)."""

    aggregate: str = "softmax"
    per_clip_seconds: float | None = None
    save_views: bool = False

    def __post_init__(self):
        if self.aggregate not in AGGREGATIONS:
            raise ValueError(f"aggregate must be one of {AGGREGATIONS}, got {self.aggregate!r}")
        if self.per_clip_seconds is not None and not self.per_clip_seconds > 0:
            raise ValueError(f"per_clip_seconds must be positive, got {self.per_clip_seconds}")


@dataclass(frozen=True)
class ExtractReport:
    videos: int  # videos and unreadable rows in the manifest
    stored_before: int  # of them, complete in the store before this run
    stored: int  # of them, complete in the store now
    processed: int  # videos this rank attempted
    seconds: float  # this rank's time on them
    failures: list[Failure] = field(default_factory=list)  # of this manifest, on every rank

    @property
    def ok(self) -> bool:
        return not self.failures


def store_metadata(pool: ExtractionPool, settings: ExtractSettings) -> dict:
    settings_dict = asdict(settings)
    return {
        "identity": pool.identity(settings_dict),
        "pool": pool.describe(),
        "settings": settings_dict,
        "gflops": {m.name: m.gflops_per_video for m in pool.members},
        "gflops_unit": "per window (per_clip_seconds)" if settings.per_clip_seconds else "per video",
        "flop_convention": FLOP_CONVENTION,
    }


def extract(
    pool: ExtractionPool,
    manifest: Manifest,
    store_root: str | Path,
    ctx: DistContext,
    settings: ExtractSettings = ExtractSettings(),
    workers: int = 2,
    progress: bool = False,
) -> ExtractReport:
    """Extract this rank's share of ``manifest`` into the store at ``store_root``."""
    manifest_id = str(manifest.path.resolve())
    meta = store_metadata(pool, settings)
    store = Store.create(store_root, meta) if ctx.is_main else None
    ctx.barrier()
    if store is None:
        store = Store.open(store_root)
        store.check_identity(meta["identity"])
    with store.in_use():
        if ctx.is_main:
            store.clear_failures(manifest_id)
            for row in manifest.bad_rows:
                store.write_failure(Failure(row.name, row.error, "manifest", manifest_id))
        done = store.completed_keys()
        ctx.barrier()  # every rank has listed the store before any rank writes to it

        names = manifest.names
        stored_before = sum(video_key(n) in done for n in names)
        shard = ctx.shard([e for e in manifest.entries if video_key(e.name) not in done])
        log.info("rank %d/%d: %d videos to extract, %d already stored", ctx.rank, ctx.world_size, len(shard), stored_before)
        plan = ViewPlan({m.name: m.clip for m in pool.members}, settings.per_clip_seconds)
        bar = progress_bar(total=len(shard), desc="extract", unit="video", disable=not (progress and ctx.is_main), dynamic_ncols=True)
        failed = 0

        def handle(item: dict) -> None:
            nonlocal failed
            entry = shard[item["index"]]
            error, stage = item.get("error"), "decode"
            if error is None:
                try:
                    arrays = video_outputs(pool, item["views"], settings.aggregate, settings.save_views)
                except (RuntimeError, ValueError) as e:
                    error, stage = f"{entry.path}: {type(e).__name__}: {e}", "inference"
                else:
                    store.write_entry(entry.name, entry.label, {"windows": item["windows"], **arrays})
            if error is not None:
                failed += 1
                log.debug("failed: %s", error)
                store.write_failure(Failure(entry.name, error, stage, manifest_id))
                bar.set_postfix(failed=failed)
            bar.update()

        started = time.perf_counter()
        iterate(VideoViews(shard, plan), workers, handle, pin_memory=ctx.device.type == "cuda")
        seconds = time.perf_counter() - started
        bar.close()
        ctx.barrier()

        done = store.completed_keys()
        wanted = set(names)
        return ExtractReport(
            videos=len(names),
            stored_before=stored_before,
            stored=sum(video_key(n) in done for n in names),
            processed=len(shard),
            seconds=seconds,
            failures=[
                f for f in store.failures()
                if f.video in wanted and f.manifest == manifest_id and video_key(f.video) not in done
            ],
        )
