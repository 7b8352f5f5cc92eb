"""The Ray Serve application: HTTP ingress -> backbone -> policy -> chosen member, each member batched.

By default every pool member is its own deployment with its own replicas; its
forward pass is batched (``condsel.serve.batching``), so the videos that the
policy routes to one member within ``batch_wait_ms`` share a forward pass. The
ingress decodes each upload once (the frames every member may need), then
asks the policy which members to run and calls their deployments through
handles. With ``colocate`` the members live in the ingress's process instead
and are called in-process (``condsel.serve.colocated``).

``app_builder`` is the ``import_path`` target of a written config
(``condsel serve --write-config``), for ``serve deploy``.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime
import asyncio
import logging
import re
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle
from starlette.datastructures import UploadFile

from condsel.pool.device import Placement
from condsel.serve.batching import BatchedMember
from condsel.serve.colocated import ColocatedMembers
from condsel.serve.config import INGRESS, ServeOptions, deployment_options
from condsel.serve.metrics import IngressMetrics, MemberMetrics
from condsel.serve.ray_host import keep_replica_grpc_on_loopback
from condsel.serve.routing import MemberLoader, RunPool, execute, run_member_loaders
from condsel.video.decode import DecodedVideo, VideoDecodeError
from condsel.video.sampling import frames_for

log = logging.getLogger(__name__)


# Deployment states in which every replica that should serve is serving.
READY_STATES = {"HEALTHY", "UPSCALING", "DOWNSCALING"}
# Multipart framing around the file, allowed on top of --max-upload-mb before the body is read.
FORM_OVERHEAD_BYTES = 64 * 1024
COPY_CHUNK_BYTES = 1 << 20

# @serve.ingress pickles the app when the class is decorated: whatever its endpoints call must be defined above it.
api = FastAPI(title="condsel serve", description="Conditional model selection for video classification")


@serve.deployment
class Member:
    """One pool member in its own replica: a :class:`~condsel.serve.batching.BatchedMember` behind a handle."""

    def __init__(self, load: MemberLoader, max_batch: int, batch_wait_ms: float, torch_threads: int,
                 device: str = "cpu", precision: str = "fp32"):
        keep_replica_grpc_on_loopback()  # before Serve starts this replica's gRPC server
        torch.set_num_threads(torch_threads)
        member, model, aggregate = load()
        self.runner = BatchedMember(member, model, aggregate, Placement.parse(device, precision), max_batch, batch_wait_ms,
                                    MemberMetrics())

    async def __call__(self, video: DecodedVideo) -> np.ndarray:
        return await self.runner(video)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _suffix(filename: str) -> str:
    """The upload's extension if it looks like one (a hint for the demuxer), else none."""
    suffix = Path(filename).suffix
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""


class _Rejected(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@serve.deployment
@serve.ingress(api)
class Ingress:
    """HTTP in, decoding once, the policy's loop over member handles, the ``condsel predict`` answer out.

    ``members`` are the member deployments' handles, each sent only the decoded
    frames it samples from (``frames_for``); or, colocated, the members to load
    here and call in-process on the decoded video itself.
    """

    def __init__(self, load_pool: Callable[[], object], members: dict[str, DeploymentHandle] | ColocatedMembers,
                 settings: dict, options: ServeOptions | None = None):
        keep_replica_grpc_on_loopback()  # before Serve starts this replica's gRPC server
        self.pool = load_pool()
        self._member = members.start() if isinstance(members, ColocatedMembers) else partial(self._remote, members)
        self.settings = settings
        self.max_bytes = int(settings["max_upload_mb"] * 2**20)
        self.metrics = IngressMetrics()
        # one controller per ingress replica: each holds the budget over the answers it gives
        self.controller = self.pool.controller(options) if options is not None and options.controlled else None
        self.waiting: dict[int, float] = {}  # request -> arrival, for the oldest unanswered request's wait
        self.metrics.control(self.pool.threshold, False)

    def _threshold(self, asked: float | None, arrived: float) -> float:
        """The request's own threshold, else the controller's, else the pool's."""
        if asked is not None:
            return asked
        if self.controller is None:
            return self.pool.threshold
        return self.controller.decide(arrived - min(self.waiting.values(), default=arrived))

    def _answered(self, answer: dict) -> None:
        self.metrics.served(answer)
        c = self.controller
        if c is not None:
            before = c.threshold
            c.observe(answer["threshold"], answer["cost"][c.curve.unit], answer["seconds"])
            self.metrics.control(c.threshold, c.shedding)
            if c.threshold != before:
                log.info("controller: threshold %.4f -> %.4f (setpoint %.4g %s per video, cap %.4g %s%s)", before, c.threshold,
                         c.setpoint, c.curve.unit, c.cap, c.curve.unit, ", shedding" if c.shedding else "")

    async def _remote(self, handles: dict[str, DeploymentHandle], name: str, video: DecodedVideo) -> np.ndarray:
        return await handles[name].remote(frames_for(video, self.pool.clips[name]))

    @api.post("/v1/predict")
    async def predict(self, request: Request) -> JSONResponse:
        """Multipart field ``video`` (a file), optional ``threshold``; answers like ``condsel predict --json``,
        with the ``threshold`` used and the ``cost`` per unit."""
        start = time.perf_counter()
        key = id(request)
        try:
            filename, asked, payload = await self._read_form(request)
            threshold = self._threshold(asked, start)
            self.waiting[key] = start
            with tempfile.TemporaryDirectory(prefix="condsel-serve-") as tmp:
                path = Path(tmp) / f"upload{_suffix(filename)}"
                await self._save(payload, path, filename)
                try:
                    video = await asyncio.to_thread(self.pool.decode, path)
                except VideoDecodeError as e:
                    raise _Rejected(422, f"{filename}: {e.reason.replace(str(path), filename)}") from e
            try:
                outputs = await execute(self.pool, self._member, video, threshold, filename)
            except Exception as e:
                log.exception("prediction failed for %s", filename)
                raise _Rejected(500, f"{filename}: inference failed: {type(e).__name__}: {e}") from e
        except _Rejected as e:
            self.metrics.failed(e.status)
            return _error(e.status, str(e))
        finally:
            self.waiting.pop(key, None)
        answer = self.pool.answer(filename, outputs, threshold, time.perf_counter() - start)
        self._answered(answer)
        return JSONResponse(answer)

    async def _read_form(self, request: Request) -> tuple[str, float | None, UploadFile]:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes + FORM_OVERHEAD_BYTES:
            raise _Rejected(413, f"upload of {int(length)} bytes is over the limit of {self.max_bytes} bytes (--max-upload-mb)")
        try:
            form = await request.form(max_files=1, max_fields=4)
        except Exception as e:  # malformed multipart body
            raise _Rejected(400, f"expected a multipart form with a file field 'video': {e}") from e
        upload = form.get("video")
        if not isinstance(upload, UploadFile):
            raise _Rejected(400, "expected a multipart form with a file field 'video'")
        filename = upload.filename or "upload"
        threshold = None
        if form.get("threshold") not in (None, ""):
            try:
                threshold = float(form.get("threshold"))
            except ValueError:
                threshold = float("nan")
            if not 0.0 <= threshold <= 1.0:
                raise _Rejected(422, f"threshold {form.get('threshold')!r} is not a number in [0, 1]")
        return filename, threshold, upload

    async def _save(self, upload: UploadFile, path: Path, filename: str) -> None:
        size = 0
        with open(path, "wb") as f:
            while chunk := await upload.read(COPY_CHUNK_BYTES):
                size += len(chunk)
                if size > self.max_bytes:
                    raise _Rejected(413, f"{filename}: upload is over the limit of {self.max_bytes} bytes (--max-upload-mb)")
                f.write(chunk)
        if size == 0:
            raise _Rejected(400, f"{filename}: empty upload (0 bytes)")

    @api.get("/healthz")
    async def healthz(self) -> JSONResponse:
        """200 when every deployment of this application is ready, else 503."""
        app = serve.get_replica_context().app_name
        status = (await asyncio.to_thread(serve.status)).applications.get(app)
        deployments = {} if status is None else {name: d.status.value for name, d in status.deployments.items()}
        ready = bool(deployments) and all(s in READY_STATES for s in deployments.values())
        return JSONResponse({"status": "ok" if ready else "unavailable", "deployments": deployments}, status_code=200 if ready else 503)

    @api.get("/v1/models")
    async def models(self) -> dict:
        """The pool, each member's GFLOPs (and ms) per video, the operating threshold and the controller's state."""
        control = None if self.controller is None else self.controller.state()
        return {**self.pool.describe(), "serving": self.settings, "controller": control}


def build_graph(load_pool: Callable[[], object], loaders: dict[str, MemberLoader], options: ServeOptions) -> Application:
    """The application for any served pool: ``load_pool()`` builds it in the ingress, ``loaders`` the member networks.

    Parameters
    ----------
    load_pool : callable
        Picklable; returns the served pool (see ``condsel.serve.routing``).
    loaders : dict
        Member name -> picklable callable returning ``(PoolMember, network, view aggregation)``.
    options : ServeOptions
        Batching, replicas, GPUs, device and precision, upload limit, threads;
        ``colocate`` puts every member in the ingress's process.

    Returns
    -------
    ray.serve.Application
        Pass it to ``serve.run``.
    """
    opts = deployment_options(options, list(loaders))
    batching = (options.max_batch, options.batch_wait_ms, options.torch_threads)
    if options.colocate:
        members = ColocatedMembers(dict(loaders), options.device, options.precision, *batching)
    else:
        members = {
            name: Member.options(name=name, **opts[name]).bind(load, *batching, options.device, options.precision)
            for name, load in loaders.items()
        }
    settings = {"max_batch": options.max_batch, "batch_wait_ms": options.batch_wait_ms, "max_upload_mb": options.max_upload_mb,
                "colocate": options.colocate, "device": options.device, "precision": options.precision}
    return Ingress.options(name=INGRESS, **opts[INGRESS]).bind(load_pool, members, settings, options)


def build_app(run: str | Path, options: ServeOptions) -> Application:
    """The application serving run directory ``run``.

    Examples
    --------
    >>> from ray import serve
    >>> serve.run(build_app("demo/synthetic/run", ServeOptions()))  # doctest: +SKIP
    """
    load_pool = partial(RunPool.from_dir, str(run), options.threshold, options.costs_ms, options.precision)
    return build_graph(load_pool, run_member_loaders(run), options)


def app_builder(args: dict) -> Application:
    """Entry point named by the written config's ``import_path``: ``args`` are ``run`` and ``ServeOptions`` fields."""
    args = dict(args)
    if "run" not in args:
        raise ValueError("condsel serve application args: 'run' (the run directory) is missing")
    run = args.pop("run")
    return build_app(run, ServeOptions.from_args(args))
