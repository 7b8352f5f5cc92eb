"""Load benchmark for ``condsel serve``: do the GFLOPs a policy saves become wall-clock saved in a service?

Usage:
    python benchmarks/serve_load.py [--demo-run DIR/synthetic/run] [--requests 20] [--clients 4]
        [--max-batch 8] [--batch-wait-ms 20] [--shares XS,S,M,L] [--cores 1] [--out serve_load.json]

Bounded concurrent clients POST videos to the Ray Serve application on
127.0.0.1. For each pool, four settings, each its own application on one local Ray:

- ``largest, no batching`` / ``largest, batching``: the costliest member alone
  (decoding only its frames), ``max_batch`` 1 / up to ``--max-batch``;
- ``policy, no batching`` / ``policy, batching``: backbone, policy, chosen member.

Pools:

- ``synthetic``: the run directory of ``condsel demo`` (its trained pool and
  selector, at the run's default threshold), on the demo's test videos;
- ``x3d``: X3D-XS (backbone), -S, -M, -L from the zoo with random weights at
  their real input sizes (1 clip x 1 centre crop each), on the bundled real
  Kinetics clip. The route after X3D-XS is drawn in fixed shares, from the
  demo run's default operating point when given (backbone share -> stop at
  XS, the middle member's share split evenly between S and M, the costliest's
  -> L; see ``demo_shares``), else from ``--shares``.

The four applications of a pool are deployed together and measured in
alternating rounds (after a warm-up), so drifting load on a shared machine
hits them alike. Throughput is requests / wall time of the measured requests;
latency is per request at the client (HTTP, decoding and queueing included).
GFLOPs per video come from the answers (members run, plus the selector).
``ratio`` = (wall-clock speedup) / (GFLOPs speedup) against ``largest, no
batching`` (on a CPU the faster of the two largest settings: batching big 3D
inputs costs more per view there): 1 means every GFLOP saved is time saved. Everything runs pinned to ``--cores``
CPU cores (Ray's processes inherit the affinity); the largest model alone
gets one replica per core, the policy one replica per member, all sharing the
same CPUs.

With ``--colocate`` it measures the colocated service (``condsel serve
--colocate``) instead, in ``--rounds`` (default 3) alternating rounds, and
prints each figure's median over the rounds with its spread (min-max):

- ``overhead``: what each extra member call costs beyond that member's profiled
  forward time. The synthetic pool's members (random weights) serve the bundled
  Kinetics clip one request at a time, unbatched, routed in turn to the
  backbone alone and to the backbone + each other member. Per member M,
  overhead = median server seconds of route (backbone, M) - median of route
  (backbone) - M's profiled forward ms (``condsel profile``'s measurement,
  taken in each round just before the served requests, under the same
  pinning and threads). Per-member
  deployments and the colocated service are measured side by side.
- ``x3d``: the X3D pool in fixed shares, colocated, against X3D-L alone,
  colocated, both unbatched with ``--clients`` clients: wall speedup / GFLOPs
  speedup per round.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from condsel.models.costs import FLOP_CONVENTION
from condsel.pool.config import load_pool_config
from condsel.pool.run_dir import load_run
from condsel.selection.evaluation.document import load_summary
from condsel.selection.method.affinity import softmax
from condsel.serve.client import post_video
from condsel.serve.config import ServeOptions
from condsel.serve.routing import RunPool, run_member_loaders
from condsel.video.decode import decode_video
from condsel.video.sampling import frames_needed

ROOT = Path(__file__).resolve().parents[1]
KINETICS_CLIP = ROOT / "tests" / "data" / "videos" / "arm_wrestling_cut.mp4"
X3D_POOL = """\
backbone = "x3d_xs"
[models.x3d_xs]
[models.x3d_s]
[models.x3d_m]
[models.x3d_l]
"""
SCHEDULE_LENGTH = 10  # requests per cycle of the fixed-share routing
PROFILE_REPEATS = 15  # forward passes per member per round of the overhead check
PORT = 8765


class SharesPool:
    """A served pool that runs ``first``, then one member of ``then`` drawn in fixed shares (None: stop).

    The draws follow a fixed interleaved schedule, so any ``SCHEDULE_LENGTH``
    consecutive requests take the shares exactly.
    """

    name = "fixed_shares"
    threshold = 0.0

    def __init__(self, clips: dict, gflops: dict, classes: int, first: str, then: dict[str | None, float]):
        self.clips, self.gflops, self.classes, self.first = clips, gflops, classes, first
        self.then = then
        self.schedule = itertools.cycle(interleave(then, SCHEDULE_LENGTH))
        self.short_side = max(c.size for c in clips.values())

    @property
    def members(self) -> list[str]:
        return list(self.clips)

    def decode(self, path):
        return decode_video(path, frames_needed(list(self.clips.values())), short_side=self.short_side)

    def next_members(self, outputs, threshold, video=None):
        if not outputs:
            return [self.first]
        if len(outputs) == 1:
            chosen = next(self.schedule)
            return [] if chosen is None else [chosen]
        return []

    def answer(self, video, outputs, threshold, seconds):
        model = list(outputs)[-1]
        probs = softmax(np.asarray(outputs[model], dtype=np.float64))
        c = int(probs.argmax())
        gflops = sum(self.gflops[m] for m in outputs)
        return {"video": video, "label": str(c), "score": float(probs[c]), "model": model, "members": list(outputs),
                "gflops": gflops, "seconds": seconds, "random_weights": True, "threshold": threshold, "cost": {"gflops": gflops}}

    def describe(self):
        return {"policy": self.name, "first": self.first, "shares": {str(k): v for k, v in self.then.items()}, "gflops": self.gflops}


def interleave(shares: dict, length: int) -> list:
    """``length`` draws with each key's count proportional to its share, spread evenly (largest remainders)."""
    total = sum(shares.values())
    exact = {k: length * v / total for k, v in shares.items()}
    counts = {k: int(x) for k, x in exact.items()}
    for k in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[: length - sum(counts.values())]:
        counts[k] += 1
    slots = sorted(((i + 0.5) / n, str(k), k) for k, n in counts.items() if n for i in range(n))
    return [k for _, _, k in slots]


def random_member(config_path: str, name: str):
    """A member loader (picklable with ``partial``): member ``name`` of a pool config file, with random weights."""
    member = load_pool_config(config_path).member(name)
    return member, member.build(random_weights=True), "logits"


def demo_shares(run_dir: Path) -> dict[str, float]:
    """X3D shares from the demo's chosen-model shares at its default operating point (see the module docstring)."""
    share = load_summary(run_dir.parent / "summary.json").latency["chosen_share"]
    run = load_run(run_dir)
    order = sorted(run.order, key=run.gflops.get)  # backbone, middle, costliest
    backbone, middle, largest = share[order[0]], share[order[1]], share[order[-1]]
    return {"x3d_xs": backbone, "x3d_s": middle / 2, "x3d_m": middle / 2, "x3d_l": largest}


SETTINGS = ("largest, no batching", "largest, batching", "policy, no batching", "policy, batching")
BASELINE = SETTINGS[0]


def timed(url: str, paths: list[Path], clients: int) -> tuple[float, list[tuple[float, dict]]]:
    """Wall seconds and (latency, answer) per request, ``clients`` requests in flight."""

    def one(path):
        start = time.perf_counter()
        status, answer = post_video(url, path, timeout=900)
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}: {answer}")
        return time.perf_counter() - start, answer

    with ThreadPoolExecutor(clients) as pool:
        start = time.perf_counter()
        results = list(pool.map(one, paths))
    return time.perf_counter() - start, results


def summarise(wall: float, results: list[tuple[float, dict]]) -> dict:
    latency = np.array([r[0] for r in results])
    models = [r[1]["model"] for r in results]
    return {
        "videos_per_s": len(results) / wall,
        "p50_ms": 1000 * float(np.percentile(latency, 50)),
        "p99_ms": 1000 * float(np.percentile(latency, 99)),
        "gflops": float(np.mean([r[1]["gflops"] for r in results])),
        "chosen": {m: models.count(m) / len(models) for m in sorted(set(models))},
    }


def bench_pool(serve, build_graph, name, largest, policy, videos, args, base) -> list[dict]:
    """``largest`` and ``policy`` are (load_pool, loaders) pairs; the four settings run side by side.

    All four applications are deployed at once and measured in alternating
    rounds, so a change of load on the machine hits every setting alike.
    """
    batched = ServeOptions(max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms)
    unbatched = ServeOptions(max_batch=1, batch_wait_ms=0)
    # the largest model alone gets one replica per core, so it can use as many cores as the policy's members
    (alone,) = largest[1]
    spread = {alone: [args.cores, args.cores]}
    setups = dict(zip(SETTINGS, (
        (largest, ServeOptions(max_batch=1, batch_wait_ms=0, replicas=spread)),
        (largest, ServeOptions(max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms, replicas=spread)),
        (policy, unbatched),
        (policy, batched),
    )))
    targets = [
        serve.RunTarget(build_graph(load_pool, loaders, options), name=f"s{i}", route_prefix=f"/s{i}")
        for i, ((load_pool, loaders), options) in enumerate(setups.values())
    ]
    logging.info("%s: deploying %d applications", name, len(targets))
    serve.run_many(targets)
    urls = {setting: f"{base}/s{i}/v1/predict" for i, setting in enumerate(SETTINGS)}
    per_round = max(1, args.requests // args.rounds)
    paths = [videos[i % len(videos)] for i in range(per_round * args.rounds)]
    walls = dict.fromkeys(SETTINGS, 0.0)
    results = {s: [] for s in SETTINGS}
    try:
        for setting in SETTINGS:  # warm-up
            timed(urls[setting], paths[: args.clients], args.clients)
        for r in range(args.rounds):
            for setting in SETTINGS:
                logging.info("%s: round %d/%d, %s", name, r + 1, args.rounds, setting)
                wall, answers = timed(urls[setting], paths[r * per_round : (r + 1) * per_round], args.clients)
                walls[setting] += wall
                results[setting] += answers
    finally:
        for i in range(len(targets)):
            serve.delete(f"s{i}")
    rows = [
        {"pool": name, "setting": s, "cores": args.cores, "max_batch": setups[s][1].max_batch, **summarise(walls[s], results[s])}
        for s in SETTINGS
    ]
    big = rows[SETTINGS.index(BASELINE)]
    for row in rows:
        wall = row["videos_per_s"] / big["videos_per_s"]
        flops = big["gflops"] / row["gflops"]
        row.update(wall_speedup=wall, gflops_speedup=flops, ratio=wall / flops)
    return rows


def synthetic_pool(run_dir: Path):
    run = load_run(run_dir)
    largest = max(run.order, key=run.gflops.get)
    loaders = run_member_loaders(run_dir)
    clips = {largest: run.members[largest].clip}
    alone = partial(SharesPool, clips, dict(run.gflops), len(run.class_names), largest, {None: 1.0})
    return (alone, {largest: loaders[largest]}), (partial(RunPool.from_dir, str(run_dir)), loaders)


def x3d_pools(config_path: Path, shares: dict[str, float]):
    config = load_pool_config(config_path)
    clips = {m.name: m.clip for m in config.members}
    gflops = {m.name: m.gflops_per_video for m in config.members}
    loaders = {m.name: partial(random_member, str(config_path), m.name) for m in config.members}
    classes = config.members[0].num_classes
    then = {None if k == config.backbone else k: v for k, v in shares.items()}
    largest = max(gflops, key=gflops.get)
    alone = partial(SharesPool, {largest: clips[largest]}, gflops, classes, largest, {None: 1.0})
    policy = partial(SharesPool, clips, gflops, classes, config.backbone, then)
    return (alone, {largest: loaders[largest]}), (policy, loaders), gflops


def table(rows: list[dict]) -> str:
    head = "| pool | cores | setting | max batch | videos/s | p50 ms | p99 ms | GFLOPs/video | wall speedup | GFLOPs speedup | ratio |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    return head + "".join(
        f"| {r['pool']} | {r['cores']} | {r['setting']} | {r['max_batch']} | {r['videos_per_s']:.2f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
        f"{r['gflops']:.3f} | {r['wall_speedup']:.2f}x | {r['gflops_speedup']:.2f}x | {r['ratio']:.2f} |\n"
        for r in rows
    )


def spread_of(values: list[float]) -> dict:
    """Median over rounds, and the spread (min, max) that the median hides."""
    return {"median": float(np.median(values)), "min": float(min(values)), "max": float(max(values)), "rounds": values}


def bench_overhead(serve, build_graph, config_path: Path, args, base) -> dict:
    """Extra-member-call overhead (see the module docstring), per-member deployments against colocated, per round."""
    from condsel._io import torch_threads
    from condsel.pool.config import build_pool
    from condsel.pool.profile import profile_pool

    config = load_pool_config(config_path)
    clips = {m.name: m.clip for m in config.members}
    gflops = {m.name: m.gflops_per_video for m in config.members}
    others = [m.name for m in config.members if m.name != config.backbone]
    nets = build_pool(config, random_weights=True)
    loaders = {name: partial(random_member, str(config_path), name) for name in clips}
    then = {None: 1.0, **{m: 1.0 for m in others}}
    pool = partial(SharesPool, clips, gflops, config.members[0].num_classes, config.backbone, then)
    modes = {"per-member": ServeOptions(max_batch=1, batch_wait_ms=0),
             "colocated": ServeOptions(max_batch=1, batch_wait_ms=0, colocate=True)}
    serve.run_many([serve.RunTarget(build_graph(pool, loaders, o), name=f"o{i}", route_prefix=f"/o{i}")
                    for i, o in enumerate(modes.values())])
    video = [KINETICS_CLIP] * (len(then) * args.overhead_requests)
    per_round: dict[str, dict[str, list[float]]] = {mode: {m: [] for m in others} for mode in modes}
    forward: dict[str, list[float]] = {m: [] for m in others}
    try:
        for i in range(len(modes)):  # warm-up
            timed(f"{base}/o{i}/v1/predict", video[: len(then)], 1)
        for r in range(args.rounds):
            # profiled in the round, beside the served runs, so that both see the same load
            with torch_threads(1):  # as the replicas run (ServeOptions.torch_threads); more threads than cores spin
                profiled = profile_pool(config, nets, (1,), repeats=PROFILE_REPEATS)["ms"]
            for m in others:
                forward[m].append(profiled[m])
            for i, mode in enumerate(modes):
                logging.info("overhead: round %d/%d, %s", r + 1, args.rounds, mode)
                _, answers = timed(f"{base}/o{i}/v1/predict", video, 1)
                seconds: dict[str, list[float]] = {}
                for _, a in answers:
                    seconds.setdefault("+".join(a["members"]), []).append(a["seconds"])
                alone = float(np.median(seconds[config.backbone]))
                for m in others:
                    extra = 1000 * (float(np.median(seconds[f"{config.backbone}+{m}"])) - alone)
                    per_round[mode][m].append(extra - profiled[m])
    finally:
        for i in range(len(modes)):
            serve.delete(f"o{i}")
    return {"profiled_ms": {m: spread_of(v) for m, v in forward.items()}, "overhead_ms": {mode: {m: spread_of(v) for m, v in ms.items()} for mode, ms in per_round.items()}}


def bench_colocated_x3d(serve, build_graph, config_path: Path, shares: dict[str, float], args, base,
                        options: ServeOptions = ServeOptions(max_batch=1, batch_wait_ms=0, colocate=True)) -> dict:
    """X3D pool in fixed shares against X3D-L alone, both colocated (unbatched by default): the ratio per round.

    ``args.rounds`` alternating rounds of ``SCHEDULE_LENGTH`` requests per application from ``args.clients`` clients.
    """
    (alone, alone_loaders), (policy, loaders), gflops = x3d_pools(config_path, shares)
    apps = {"largest": (alone, alone_loaders), "policy": (policy, loaders)}
    serve.run_many([serve.RunTarget(build_graph(load, members, options), name=f"c{i}", route_prefix=f"/c{i}")
                    for i, (load, members) in enumerate(apps.values())])
    paths = [KINETICS_CLIP] * SCHEDULE_LENGTH
    rounds = []
    try:
        for i in range(len(apps)):  # warm-up
            timed(f"{base}/c{i}/v1/predict", paths[: args.clients], args.clients)
        for r in range(args.rounds):
            row = {}
            for i, name in enumerate(apps):
                logging.info("x3d colocated: round %d/%d, %s", r + 1, args.rounds, name)
                wall, answers = timed(f"{base}/c{i}/v1/predict", paths, args.clients)
                row[name] = summarise(wall, answers)
            wall_speedup = row["policy"]["videos_per_s"] / row["largest"]["videos_per_s"]
            gflops_speedup = row["largest"]["gflops"] / row["policy"]["gflops"]
            rounds.append({**row, "wall_speedup": wall_speedup, "gflops_speedup": gflops_speedup, "ratio": wall_speedup / gflops_speedup})
    finally:
        for i in range(len(apps)):
            serve.delete(f"c{i}")
    return {"rounds": rounds, "ratio": spread_of([r["ratio"] for r in rounds]),
            "wall_speedup": spread_of([r["wall_speedup"] for r in rounds]), "gflops_speedup": rounds[0]["gflops_speedup"]}


def colocate_report(overhead: dict | None, x3d: dict | None) -> str:
    """Markdown tables of the checks that ran (None: not run)."""
    def cell(s: dict, fmt: str = "{:.1f}") -> str:
        return f"{fmt.format(s['median'])} ({fmt.format(s['min'])} to {fmt.format(s['max'])})"

    lines = []
    if overhead is not None:
        lines += ["| extra member | profiled forward ms | overhead ms, per-member deployments | overhead ms, colocated |", "|---|---|---|---|"]
        for m, ms in overhead["profiled_ms"].items():
            per_member, colocated = overhead["overhead_ms"]["per-member"][m], overhead["overhead_ms"]["colocated"][m]
            lines.append(f"| {m} | {cell(ms, '{:.2f}')} | {cell(per_member)} | {cell(colocated)} |")
    if x3d is None:
        return "\n".join(lines)
    lines += ["", "| X3D, colocated, unbatched | median over rounds (min to max) |", "|---|---|",
              f"| wall speedup over X3D-L alone | {cell(x3d['wall_speedup'], '{:.2f}')} |",
              f"| GFLOPs speedup | {x3d['gflops_speedup']:.2f} |",
              f"| ratio (wall / GFLOPs) | {cell(x3d['ratio'], '{:.2f}')} |"]
    for i, r in enumerate(x3d["rounds"]):
        lines.append(f"| round {i + 1}: videos/s X3D-L alone / policy | {r['largest']['videos_per_s']:.3f} / {r['policy']['videos_per_s']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo-run", type=Path, help="DIR/synthetic/run from `condsel demo --out DIR` (without it: X3D pool only)")
    parser.add_argument("--requests", type=int, default=20, help="measured requests per setting (default: 20)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default: 4)")
    parser.add_argument("--rounds", type=int, help="alternating measurement rounds (default: 2; 3 with --colocate)")
    parser.add_argument("--colocate", action="store_true",
                        help="measure the colocated service instead: extra-member-call overhead and the X3D ratio (see above)")
    parser.add_argument("--overhead-requests", type=int, default=8, help="requests per route per round of the overhead check (default: 8)")
    parser.add_argument("--checks", nargs="+", choices=["overhead", "x3d"], default=["overhead", "x3d"],
                        help="with --colocate: which checks to run (default: both)")
    parser.add_argument("--max-batch", type=int, default=8, help="batch size of the batched settings (default: 8)")
    parser.add_argument("--batch-wait-ms", type=float, default=20.0, help="batch wait of the batched settings (default: 20)")
    parser.add_argument("--shares", default="0.5,0.2,0.2,0.1", help="X3D XS,S,M,L shares when no --demo-run (default: 0.5,0.2,0.2,0.1)")
    parser.add_argument("--cores", type=int, default=1, help="CPU cores to pin everything to (default: 1)")
    parser.add_argument("--pools", nargs="+", choices=["synthetic", "x3d"], default=["synthetic", "x3d"])
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    args.rounds = args.rounds or (3 if args.colocate else 2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cores])
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="condsel-ray-", dir="/tmp"))
    import ray
    from ray import serve

    from condsel.serve.app import build_graph

    ray.init(num_cpus=args.cores, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    base = f"http://127.0.0.1:{PORT}"
    rows = []
    if args.colocate:
        run_colocate_checks(serve, build_graph, args, base)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if "synthetic" in args.pools and args.demo_run:
            largest, policy = synthetic_pool(args.demo_run)
            data = args.demo_run.parent / "data"  # the demo's synthetic videos and split lists
            videos = [data / line.split(",")[0] for line in (data / "test.csv").read_text().splitlines()[1:]]
            rows += bench_pool(serve, build_graph, "synthetic", largest, policy, videos, args, base)
        if "x3d" in args.pools:
            config_path = Path(tmp) / "pool_x3d.toml"
            config_path.write_text(X3D_POOL)
            if args.demo_run:
                shares = demo_shares(args.demo_run)
            else:
                shares = dict(zip(["x3d_xs", "x3d_s", "x3d_m", "x3d_l"], map(float, args.shares.split(","))))
            largest, policy, gflops = x3d_pools(config_path, shares)
            logging.info("x3d shares %s, GFLOPs per video %s", shares, gflops)
            rows += bench_pool(serve, build_graph, "x3d", largest, policy, [KINETICS_CLIP], args, base)
    serve.shutdown()
    ray.shutdown()
    print(f"\n{args.requests} requests per setting from {args.clients} clients on 127.0.0.1, {args.cores} CPU core(s), "
          f"1 torch thread per replica; {FLOP_CONVENTION}\n")
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "args": {k: str(v) for k, v in vars(args).items()}}, indent=1))


def run_colocate_checks(serve, build_graph, args, base) -> None:
    from condsel.pool.config import write_pool_config
    from condsel.workflows.demo import SYNTHETIC_POOL

    import ray

    with tempfile.TemporaryDirectory() as tmp:
        synthetic = Path(tmp) / "pool_synthetic.toml"
        write_pool_config(SYNTHETIC_POOL, synthetic)
        x3d = Path(tmp) / "pool_x3d.toml"
        x3d.write_text(X3D_POOL)
        shares = dict(zip(["x3d_xs", "x3d_s", "x3d_m", "x3d_l"], map(float, args.shares.split(","))))
        overhead = bench_overhead(serve, build_graph, synthetic, args, base) if "overhead" in args.checks else None
        ratio = bench_colocated_x3d(serve, build_graph, x3d, shares, args, base) if "x3d" in args.checks else None
    serve.shutdown()
    ray.shutdown()
    print(f"\n--colocate checks on 127.0.0.1, {args.cores} CPU core(s), 1 torch thread, unbatched; {args.rounds} alternating rounds, "
          f"median (min to max); overhead: {args.overhead_requests} requests per route per round, 1 client; "
          f"X3D: {SCHEDULE_LENGTH} requests per setting per round from {args.clients} clients, shares {shares}\n")
    print(colocate_report(overhead, ratio))
    if args.out:
        args.out.write_text(json.dumps({"overhead": overhead, "x3d": ratio, "args": {k: str(v) for k, v in vars(args).items()}}, indent=1))


if __name__ == "__main__":
    main()
