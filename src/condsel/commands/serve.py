"""``condsel serve``: serve a run directory over HTTP on Ray Serve."""

from __future__ import annotations

import argparse
import os

from condsel._argtypes import add_placement_flags, fraction, nonnegative_float, port, positive_float, positive_int

DESCRIPTION = """\
Serve conditional inference over HTTP with Ray Serve. Each upload is decoded
once; then the run's policy asks for members until it stops (the selector: the
backbone, then its choice; a cascade: members in order, fused). Every pool
member is its own deployment with dynamic batching (--max-batch videos,
waiting up to --batch-wait-ms) and its own replicas.

  POST /v1/predict   multipart: file field `video`, optional `threshold`; answers
                     the object `condsel predict --json` gives ({"video", "label",
                     "score", "model", "members", "gflops", "seconds",
                     "random_weights"}; video = the upload's filename), plus
                     "threshold" (the one used) and "cost": {"gflops", "ms"}
                     (ms with --costs).
                     400 empty upload or no `video` field, 413 over --max-upload-mb,
                     422 not a decodable video (the decoder's message) or a bad
                     threshold, 500 a member failed on this video.
  GET  /healthz      200 when every deployment is ready, else 503
  GET  /v1/models    the pool, GFLOPs per member, the operating threshold

Budget controller (docs/serve.md): --target-gflops X or --target-ms Y holds
the mean realised cost per video over the last --window answers within +-10%
of the target by moving the threshold along the run's calibration curve
(integral control with a deadband and a rate limit, bounded by the curve).
--slo-ms P sheds to cheaper operating points when the oldest request's wait
or the p99 latency passes 0.4 x P, and returns when p99 falls under 0.3 x P.
A target outside the curve's [cheapest, costliest] range or a non-positive
--slo-ms is an error (exit 2). A request's own `threshold` bypasses the
controller.

Where members run (docs/serve.md, "Devices and colocation"): --device cpu,
cuda or cuda:N and --precision fp32|bf16|fp16 (autocast; answers then carry
"precision"). --colocate puts every member in the ingress's process on one
device, the policy's loop calling them in-process (no handle calls, no
object transfers; each member still batches): choose it when the pool fits
one device. Per-member deployments (the default) pay a handle call per member
run but give each member its own replicas (--replicas NAME=N). --gpus NAME=F
reserves F GPUs (Ray's num_gpus, fractions share a GPU) per replica of member
NAME; with --colocate, --gpus F for the one deployment. On --device cuda,
members without --gpus get 1/(members) GPU each (colocated: 1).

Without --address (or RAY_ADDRESS) a local Ray starts here and stops on
SIGINT/SIGTERM; with it, the application is added to that cluster and removed
on exit. --write-config writes a Ray Serve config for `serve deploy` instead of
serving. Metrics (condsel_requests, condsel_batch_size, condsel_request_seconds,
condsel_stage_exits, condsel_video_cost, condsel_threshold, condsel_shedding, ...) go to Ray's Prometheus endpoint (http://NODE_IP:PORT/metrics, PORT set by
--metrics-port for a local Ray). A local Ray listens on 127.0.0.1 only, its
metrics port included, unless --ray-host names another address. GFLOPs are multiply-adds (X3D/fvcore).
"""

# Seconds allowed for Serve and Ray to stop after a signal.
SHUTDOWN_SECONDS = 25


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="serve a run directory over HTTP (Ray Serve)", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--run", required=True, metavar="RUNDIR", help="run directory (condsel fit --out, or DIR/synthetic/run from condsel demo)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=port, default=8000, help="HTTP port (default: 8000)")
    point = p.add_mutually_exclusive_group()
    point.add_argument("--threshold", type=fraction, metavar="T", help="default selector threshold in [0, 1]")
    point.add_argument("--budget", type=positive_float, metavar="GFLOPS", help="mean GFLOPs per video to stay within")
    point.add_argument("--target-gflops", type=positive_float, metavar="X",
                       help="hold the realised mean GFLOPs per video over the last --window answers at X (budget controller)")
    point.add_argument("--target-ms", type=positive_float, metavar="Y",
                       help="hold the realised mean profiled ms per video at Y (needs --costs with an [ms] table)")
    p.add_argument("--window", type=positive_int, default=64, metavar="N", help="answers the controller averages over (default: 64)")
    p.add_argument("--slo-ms", type=positive_float, default=None, metavar="P",
                   help="p99 latency to keep: shed to cheaper operating points when queueing threatens it, return after")
    p.add_argument("--costs", default=None, metavar="F.toml",
                   help="[ms] per member (condsel profile): answers then carry cost.ms; needed by --target-ms")
    p.add_argument("--max-batch", type=positive_int, default=16, metavar="N", help="most videos per member forward batch (default: 16; 1 = no batching)")
    p.add_argument("--batch-wait-ms", type=nonnegative_float, default=10.0, metavar="MS", help="longest wait to fill a batch (default: 10)")
    p.add_argument("--replicas", nargs="+", default=[], metavar="NAME=N", help="replicas per deployment (a member or Ingress): N, or MIN-MAX to autoscale")
    add_placement_flags(p, "the members' forward passes")
    p.add_argument("--colocate", action="store_true",
                   help="every member in one deployment (the ingress's process, one device), called in-process")
    p.add_argument("--gpus", nargs="+", default=[], metavar="NAME=F",
                   help="GPUs per replica (Ray num_gpus, fractions allowed): NAME=F per member deployment, F with --colocate")
    p.add_argument("--address", default=None, metavar="RAY_ADDRESS", help="attach to this Ray cluster (default: $RAY_ADDRESS, else start a local Ray)")
    p.add_argument("--max-upload-mb", type=positive_float, default=200.0, metavar="MB", help="largest accepted upload (default: 200)")
    p.add_argument("--torch-threads", type=positive_int, default=1, metavar="N", help="torch threads per member replica (default: 1)")
    p.add_argument("--ray-host", default=None, metavar="IP", help="node address of the local Ray (default: 127.0.0.1, every Ray port on loopback only; another address lets other machines reach Ray's control ports)")
    p.add_argument("--ray-cpus", type=positive_int, default=None, metavar="N", help="CPUs of the local Ray (default: all)")
    p.add_argument("--metrics-port", type=port, default=None, metavar="PORT", help="Prometheus port of the local Ray's metrics agent (default: Ray picks one)")
    p.add_argument("--write-config", default=None, metavar="YAML", help="write a Ray Serve config for `serve deploy` and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from condsel.errors import CondselError
    from condsel.pool.device import Placement
    from condsel.serve.ray_host import prepare_ray

    # a GPU must be here for a local service; a cluster's (--address, --write-config) is checked where members load
    here = not (args.write_config or args.address or os.environ.get("RAY_ADDRESS"))
    placement = Placement.parse(args.device, args.precision, here)

    ray_init = prepare_ray(args.address or os.environ.get("RAY_ADDRESS"), args.ray_host)  # before Ray is imported
    try:
        import multipart  # noqa: F401  (FastAPI's form parser)
        import ray.serve  # noqa: F401
    except ImportError as e:
        raise CondselError(f"condsel serve needs the serve extra: pip install 'condsel[serve]' ({e})") from e
    from condsel.models.costs import load_costs_toml
    from condsel.pool.run_dir import load_run
    from condsel.serve.config import Replicas, ServeOptions, deployment_options, parse_gpus
    from condsel.serve.routing import RunPool

    loaded = load_run(args.run)
    replicas = dict(Replicas.parse(text) for text in args.replicas)
    run_dir = loaded.root.resolve()
    costs_ms = None
    if args.costs:
        costs = load_costs_toml(args.costs)
        if costs.unit != "ms":
            raise CondselError(f"{args.costs}: --costs for serve takes an [ms] table (condsel profile); the run has its GFLOPs")
        costs_ms = dict(costs)
    elif loaded.cost_unit == "ms":  # a run fitted on profiled costs knows its members' ms
        costs_ms = {m: loaded.policy.gflops_[m] for m in loaded.order}
    options = ServeOptions(
        threshold=loaded.operating_threshold(args.threshold, args.budget),
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
        max_upload_mb=args.max_upload_mb,
        torch_threads=args.torch_threads,
        replicas={name: [r.low, r.high] for name, r in replicas.items()},
        target_gflops=args.target_gflops,
        target_ms=args.target_ms,
        window=args.window,
        slo_ms=args.slo_ms,
        costs_ms=costs_ms,
        device=args.device.strip(),
        precision=placement.precision,
        colocate=args.colocate,
        gpus=parse_gpus(args.gpus, args.colocate),
    )
    deployment_options(options, loaded.order)  # unknown --replicas / --gpus names: exit 2 before Ray starts
    RunPool(loaded, options.threshold, costs_ms).controller(options)  # a target off the curve: exit 2 before Ray starts
    if args.write_config:
        from condsel.serve.config import write_config

        path = write_config(args.write_config, run_dir, options, loaded.order, args.host, args.port)
        print(f"wrote {path}: deploy with `serve deploy {path}` (Ray Serve)")
        return 0
    return _serve(args, run_dir, options, ray_init)


def _serve(args: argparse.Namespace, run_dir, options, ray_init: dict) -> int:
    import signal
    import threading

    import ray
    from ray import serve

    from condsel.serve.app import build_app
    from condsel.serve.config import APP_NAME
    from condsel.serve.ray_host import DEFAULT_RAY_HOST, check_bound

    address = args.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
    else:
        ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False, _metrics_export_port=args.metrics_port, **ray_init)
        check_bound(args.ray_host or DEFAULT_RAY_HOST, ray.get_runtime_context().gcs_address)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": args.host, "port": args.port})
        serve.run(build_app(run_dir, options), name=APP_NAME, route_prefix="/")
        where = f"{'colocated' if options.colocate else 'per-member deployments'}, {options.device}, {options.precision}"
        print(
            f"condsel serve: http://{args.host}:{args.port} (POST /v1/predict, GET /healthz, GET /v1/models); {where}; "
            f"Ray at {ray.get_runtime_context().gcs_address}; Ctrl-C stops",
            flush=True,
        )
        stop.wait()
    finally:
        print("condsel serve: stopping", flush=True)
        _stop(address)
    return 0


def _stop(attached: str | None) -> None:
    """Remove the application (attached) or stop Serve and Ray (local), giving up after ``SHUTDOWN_SECONDS``."""
    import threading

    import ray
    from ray import serve

    from condsel.serve.config import APP_NAME

    def stop() -> None:
        if attached:
            serve.delete(APP_NAME)
        else:
            serve.shutdown()
        ray.shutdown()

    worker = threading.Thread(target=stop, daemon=True)
    worker.start()
    worker.join(SHUTDOWN_SECONDS)
