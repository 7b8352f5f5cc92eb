"""Extraction under faults: kill -9 and resume, 1 vs 2 torchrun processes, fuzzed files and manifests, a crashing decoder."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_extract_support import (
    TINY_POOL,
    condsel_command,
    make_bad_files,
    make_run_dir,
    make_videos,
    run_condsel,
    write_manifest,
)

from condsel.cli import main
from condsel.extract import dataset as extract_dataset
from condsel.extract import load_store, read_manifest
from condsel.extract.store import Store
from condsel.pool.views import ViewPlan
from condsel.synthetic import CLASS_NAMES

GOOD = 18


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract_faults")
    good = make_videos(root / "data", GOOD, seed=3)
    bad = make_bad_files(root / "data", root / "data" / good[0][0])
    rows = good + [(p, "grow") for p in bad]
    manifest = write_manifest(root / "data" / "manifest.csv", rows, extra_lines=[b"videos/x.mp4"])
    run = make_run_dir(root / "run")
    reference = root / "reference"
    assert _extract(run, manifest, reference) == 1
    return {"root": root, "run": run, "manifest": manifest, "reference": reference, "good": [n for n, _ in good]}


def _extract(run: Path, manifest: Path, out: Path, workers: int = 2) -> int:
    return main(["extract", "--pool", str(run), "--manifest", str(manifest), "--out", str(out), "--workers", str(workers),
                 "--no-progress"])


def _assert_same_store(path: Path, reference: Path) -> None:
    """Same videos, same numbers (to 1e-6), same failures; every entry stored once and readable."""
    got, ref = load_store(path), load_store(reference)
    assert got.names.tolist() == ref.names.tolist()
    for m in ref.logits:
        np.testing.assert_allclose(got.logits[m], ref.logits[m], rtol=0, atol=1e-6)
    for m in ref.features:
        np.testing.assert_allclose(got.features[m], ref.features[m], rtol=0, atol=1e-6)
    assert got.labels.tolist() == ref.labels.tolist()
    files = list((path / "videos").rglob("*"))
    assert sorted(p.suffix for p in files if p.is_file()) == [".npz"] * len(ref.names)  # no duplicates, no leftovers
    failures = [(f.video, f.error) for f in Store.open(path).failures()]
    assert failures == [(f.video, f.error) for f in Store.open(reference).failures()]


def test_reference_run_stores_good_videos_once_and_lists_the_failures(material):
    table = load_store(material["reference"])
    assert sorted(table.names) == sorted(material["good"])
    failed = {f.video: f.error for f in Store.open(material["reference"]).failures()}
    assert len(failed) == 6 and "manifest.csv:25" in failed
    assert all(message for message in failed.values())


def test_kill_9_mid_run_then_resume(material, tmp_path):
    out = tmp_path / "store"
    args = ["extract", "--pool", str(material["run"]), "--manifest", str(material["manifest"]), "--out", str(out),
            "--workers", "1", "--threads", "1", "--no-progress"]
    process = subprocess.Popen(condsel_command(*args), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while len(list(out.glob("videos/*/*.npz"))) < 3:
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no video was stored in time"
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the run and its decoding worker, at once
        process.wait()
    stored_at_kill = len(list(out.glob("videos/*/*.npz")))
    assert 3 <= stored_at_kill < GOOD, "the kill must land part-way through"
    # a write cut short by the kill leaves a temporary file behind; plant one for certain
    shard = next(p for p in (out / "videos").iterdir() if p.is_dir())
    (shard / ".killed.npz.q8r2.tmp").write_bytes(b"PK\x03\x04 half of a zip archive")

    assert _extract(material["run"], material["manifest"], out) == 1
    _assert_same_store(out, material["reference"])


@pytest.mark.slow
def test_two_torchrun_processes_give_the_one_process_store(material, tmp_path):
    out = tmp_path / "store"
    result = run_condsel("extract", "--pool", str(material["run"]), "--manifest", str(material["manifest"]), "--out", str(out),
                         "--workers", "1", "--no-progress", torchrun=2, timeout=240)
    assert result.returncode != 0, result.stderr
    # 23 entries (18 good, 5 spoiled files) dealt out in turn: disjoint shards that cover the manifest
    assert "rank 0/2: 12 videos to extract" in result.stderr and "rank 1/2: 11 videos to extract" in result.stderr
    assert result.stdout.count("condsel extract:") == 1  # rank 0 alone prints the summary
    assert f"stored {GOOD} ({GOOD} this run, 0 before)" in result.stdout
    assert "FAILED 6" in result.stderr
    _assert_same_store(out, material["reference"])


def _fuzzed(data: bytes, rng: np.random.Generator) -> list[bytes]:
    """Hostile variants of a good mp4: random bytes, bit flips, cuts, zeroed spans, splices."""
    variants = [rng.integers(0, 256, int(rng.integers(1, 4000)), dtype=np.uint8).tobytes() for _ in range(3)]
    for flips in (1, 10, 200):
        buf = np.frombuffer(data, dtype=np.uint8).copy()
        at = rng.integers(0, len(buf), flips)
        buf[at] ^= rng.integers(1, 256, flips, dtype=np.uint8)
        variants.append(buf.tobytes())
    variants += [data[: int(rng.integers(8, len(data)))] for _ in range(3)]
    zeroed = bytearray(data)
    start = int(rng.integers(0, len(data) // 2))
    zeroed[start : start + len(data) // 4] = bytes(len(data) // 4)
    variants += [bytes(zeroed), data[len(data) // 2 :] + data[: len(data) // 2], data[:64]]
    return variants


def test_fuzzed_files_and_rows_never_stop_the_run(material, tmp_path):
    rng = np.random.default_rng(11)
    root = material["manifest"].parent
    data = (root / material["good"][0]).read_bytes()
    rows = [(n, "grow") for n in material["good"][:4]]
    for i, blob in enumerate(_fuzzed(data, rng)):
        (tmp_path / f"fuzz_{i:02d}.mp4").write_bytes(blob)
        rows.append((str(tmp_path / f"fuzz_{i:02d}.mp4"), "grow"))
    rows = [(str(root / n) if not Path(n).is_absolute() else n, label) for n, label in rows]
    junk = [bytes(b for b in rng.integers(0, 256, 30, dtype=np.uint8) if b not in b"\n\r,") for _ in range(4)]
    manifest = write_manifest(tmp_path / "fuzz.csv", rows, extra_lines=junk)
    names = set(read_manifest(manifest, len(CLASS_NAMES), list(CLASS_NAMES)).names)
    out = tmp_path / "store"
    code = _extract(material["run"], manifest, out)
    store = Store.open(out)
    stored, failed = set(store.video_names()), {f.video for f in store.failures()}
    assert stored | failed == names and not stored & failed  # every video accounted for, once
    assert {str(root / n) for n in material["good"][:4]} <= stored
    assert len(failed) >= 4 + 3  # the junk rows and the random-byte files at least
    assert code == 1


@pytest.mark.parametrize(
    "text",
    [b"", b"video,label\na.mp4,grow\n", b"path;label\na.mp4;grow\n", b"path,label\na.mp4,no_such_class\n"],
)
def test_malformed_manifests_are_clear_errors_before_any_work(material, tmp_path, text, capsys):
    manifest = tmp_path / "bad.csv"
    manifest.write_bytes(text)
    assert _extract(material["run"], manifest, tmp_path / "store") == 2
    err = capsys.readouterr().err
    assert err.startswith("condsel extract: error: ") and str(manifest) in err and "Traceback" not in err
    assert not (tmp_path / "store").exists()


def test_a_decoder_that_kills_its_worker_costs_one_video(material, tmp_path, monkeypatch):
    victim = material["good"][5]
    decode = extract_dataset.decode_for_plan

    def crashing_decode(path, *args, **kwargs):
        if str(path).endswith(victim):
            os.kill(os.getpid(), signal.SIGSEGV)  # what a crash inside FFmpeg looks like to the loader
        return decode(path, *args, **kwargs)

    monkeypatch.setattr(extract_dataset, "decode_for_plan", crashing_decode)
    out = tmp_path / "store"
    assert _extract(material["run"], material["manifest"], out) == 1
    store = Store.open(out)
    assert sorted(store.video_names()) == sorted(n for n in material["good"] if n != victim)
    errors = {f.video: f.error for f in store.failures()}
    assert "worker died" in errors[victim] and len(errors) == 7


def test_first_death_as_a_reset_then_a_death_report_mid_handling_costs_one_video(material, tmp_path, monkeypatch):
    """Issue 26's sequence, forced: the dead worker's pipe surfaces as ConnectionResetError (as the tensor
    rebuild did), and while that death is being handled PyTorch's worker-death RuntimeError is raised at the
    log call, where its SIGCHLD handler struck. One video is recorded, the run goes on."""
    victim = material["good"][5]
    decode, receive, log = extract_dataset.decode_for_plan, extract_dataset._receive, extract_dataset.log
    events = []

    def crashing_decode(path, *args, **kwargs):
        if str(path).endswith(victim):
            os.kill(os.getpid(), signal.SIGSEGV)
        return decode(path, *args, **kwargs)

    def resetting_receive(channel):
        try:
            return receive(channel)
        except EOFError:
            events.append("ConnectionResetError")
            raise ConnectionResetError(104, "Connection reset by peer") from None

    class InterruptedLog:
        def __getattr__(self, name):
            return getattr(log, name)

        def warning(self, message, *args):
            if events == ["ConnectionResetError"]:
                events.append("RuntimeError")
                raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Segmentation fault. ")
            log.warning(message, *args)

    monkeypatch.setattr(extract_dataset, "decode_for_plan", crashing_decode)
    monkeypatch.setattr(extract_dataset, "_receive", resetting_receive)
    monkeypatch.setattr(extract_dataset, "log", InterruptedLog())
    out = tmp_path / "store"
    assert _extract(material["run"], material["manifest"], out) == 1
    assert events == ["ConnectionResetError", "RuntimeError"]  # both reports happened, in that order
    store = Store.open(out)
    assert sorted(store.video_names()) == sorted(n for n in material["good"] if n != victim)
    errors = {f.video: f.error for f in store.failures()}
    assert "worker died" in errors[victim] and "Segmentation fault" in errors[victim] and len(errors) == 7


def test_two_workers_killed_in_the_same_window_cost_exactly_their_two_videos(material, tmp_path, monkeypatch):
    """Both decoding processes die at once (each waits until the other is on its fatal video): the two
    videos they published are recorded, the two dispatched behind them are re-queued and stored."""
    good = material["good"]
    victims = good[:2]  # indices 0 and 1: the first dispatch hands one to each worker
    decode = extract_dataset.decode_for_plan
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()

    def crashing_together(path, *args, **kwargs):
        name = Path(path).name
        if any(str(path).endswith(v) for v in victims):
            (rendezvous / name).touch()
            deadline = time.monotonic() + 60
            while len(list(rendezvous.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(os.getpid(), signal.SIGSEGV)
        return decode(path, *args, **kwargs)

    monkeypatch.setattr(extract_dataset, "decode_for_plan", crashing_together)
    root = material["manifest"].parent
    manifest = write_manifest(tmp_path / "manifest.csv", [(str(root / n), "grow") for n in good])
    out = tmp_path / "store"
    assert _extract(material["run"], manifest, out) == 1
    assert len(list(rendezvous.iterdir())) == 2  # both were being decoded at the same time
    store = Store.open(out)
    assert sorted(store.video_names()) == sorted(str(root / n) for n in good[2:])
    errors = {f.video: f.error for f in store.failures()}
    assert sorted(errors) == sorted(str(root / v) for v in victims)
    assert all("worker died" in e and "Segmentation fault" in e for e in errors.values())


def test_a_second_run_started_while_the_first_creates_the_store_joins_it(material, tmp_path, monkeypatch):
    """The first run pauses at the worst moment of creating the store (store.json written whole under a
    temporary name, not yet in place) and a second run on the same new --out goes from start to end in
    that pause. The first then finds the second's store and joins it as a resumed run does."""
    out = tmp_path / "new" / "store"
    link, second = os.link, []

    def paused_link(staged, path):
        if not second:
            second.append("started")
            second.append(_extract(material["run"], material["manifest"], out))
        return link(staged, path)

    monkeypatch.setattr(os, "link", paused_link)
    assert _extract(material["run"], material["manifest"], out) == 1
    assert second == ["started", 1]  # the second run finished, with the manifest's failures
    _assert_same_store(out, material["reference"])
    assert sorted(p.name for p in out.iterdir()) == ["failures", "store.json", "videos"]


class _Misbehaving(extract_dataset.VideoViews):
    """Entry 1 crashes the process decoding it; entry 2 hangs it."""

    def decode(self, index):
        if index == 1:
            os.kill(os.getpid(), signal.SIGSEGV)
        if index == 2:
            time.sleep(120)
        return super().decode(index)


def test_a_crash_or_a_hang_costs_the_video_its_process_published(material):
    entries = read_manifest(material["manifest"], len(CLASS_NAMES), list(CLASS_NAMES)).entries[:4]
    dataset = _Misbehaving(entries, ViewPlan({m.name: m.clip for m in TINY_POOL.members}))
    items = {}
    started = time.monotonic()
    extract_dataset.iterate(dataset, 2, lambda item: items.setdefault(item["index"], item), timeout_s=2)
    assert time.monotonic() - started < 30
    assert sorted(items) == [0, 1, 2, 3]
    for index in (0, 3):
        here = extract_dataset.VideoViews(entries, dataset.plan).decode(index)  # decoded in this process
        assert items[index].keys() == here.keys() == {"index", "windows", "views"}
        for member, views in here["views"].items():
            assert torch.equal(items[index]["views"][member], torch.from_numpy(views))
    assert items[1]["error"] == f"{entries[1].path}: the decoding worker died or hung on this file (killed by signal: Segmentation fault)"
    assert items[2]["error"] == f"{entries[2].path}: the decoding worker died or hung on this file (no result in 2 s)"
