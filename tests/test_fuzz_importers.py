"""A fuzzed front door: damaged inputs for every importer, generated with hypothesis.

Each importer gets its real or valid input damaged (truncated, bytes changed or inserted, random bytes,
other text encodings) and inputs built from scratch with wrong dtypes and shapes, NaN/inf, empty arrays,
duplicate or missing names, absurd class counts and sizes, and deep nesting. The property: the loader
either returns a valid result or raises :class:`CondselError` naming the file, and then the command line
exits 2 with one line naming it. Any other exception fails the test; a hang fails the hypothesis
deadline; a huge allocation fails under an address-space limit. The count of cases tried is printed
at the end of the pytest run (``pytest_terminal_summary`` in conftest.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import pickle
import resource
import string
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, FUZZ_CASES
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from condsel.cli import main
from condsel.datasets.manifests import read_class_names, read_path_label_list
from condsel.datasets.thumos import load_ground_truth
from condsel.errors import CondselError
from condsel.extract.manifest import read_manifest
from condsel.localization.detection_map import load_results
from condsel.models.costs import load_costs_toml
from condsel.pool.config import load_pool_config
from condsel.selection.data.importers import read_scores
from condsel.sources import load_table
from condsel.selection.data.table import PredictionTable

pytestmark = pytest.mark.slow  # ~25 s of seeded cases: the full run (CI) tries them all; the fast lane skips them

DMCNET = FIXTURES / "ucf101_scores_subset" / "ucf101_coviar__ucf101_mv__split1__mv_score_model_best.npz"
GT_JSON = FIXTURES / "thumos14" / "gt_activitynet_subset.json"
MULTITHUMOS_JSON = FIXTURES / "multithumos" / "multithumos_subset.json"
EXAMPLES = 60  # per test in the fast lane; the slow lane's tests try more
HEADROOM = 3 << 30  # bytes of address space a loader may add before an allocation counts as huge


def fuzz_settings(examples: int = EXAMPLES):
    return settings(
        max_examples=examples, deadline=timedelta(seconds=5), derandomize=True, database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@contextlib.contextmanager
def bounded_memory():
    """Cap the address space a little above what the process holds, so a huge allocation raises MemoryError."""
    with open("/proc/self/statm") as f:
        held = int(f.read().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (held + HEADROOM, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def check_loader(kind: str, load, path: Path) -> CondselError | None:
    """Load ``path``: a result, or a CondselError naming it; anything else propagates and fails the test."""
    FUZZ_CASES[kind] = FUZZ_CASES.get(kind, 0) + 1
    try:
        with bounded_memory():
            load(path)
    except CondselError as e:
        assert path.name in str(e), f"the error does not name {path.name}: {e}"
        return e
    return None


def check_cli(capsys, argv: list[str], path: Path) -> None:
    """The command exits 2 with one line naming ``path``."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"condsel {argv[0]}: error: ") and path.name in err, err


# --- damage to any file's bytes -------------------------------------------------------------------


def _flip(good: bytes, changes: list[tuple[int, int]]) -> bytes:
    data = bytearray(good)
    for position, value in changes:
        data[position % len(data)] = value
    return bytes(data)


def damaged(good: bytes) -> st.SearchStrategy[bytes]:
    """Truncations, changed bytes, inserted bytes, or random bytes."""
    size = len(good)
    return st.one_of(
        st.integers(0, size - 1).map(lambda n: good[:n]),
        st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, 255)), min_size=1, max_size=8).map(lambda c: _flip(good, c)),
        st.tuples(st.integers(0, size), st.binary(min_size=1, max_size=64)).map(lambda t: good[: t[0]] + t[1] + good[t[0]:]),
        st.binary(max_size=512),
    )


def reencoded(text: str) -> st.SearchStrategy[bytes]:
    """The same text in an encoding the reader does not expect."""
    return st.sampled_from(["utf-16", "utf-32", "cp1252", "utf-8-sig"]).map(lambda e: text.encode(e, errors="replace"))


def text_damage(text: str) -> st.SearchStrategy[bytes]:
    return st.one_of(damaged(text.encode()), reencoded(text))


# --- score files ---------------------------------------------------------------------------------

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)
SCALAR_DTYPES = st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.uint8, np.bool_, np.complex64, np.str_])


def arrays_of(max_dims: int = 3) -> st.SearchStrategy[np.ndarray]:
    """Arrays of any small shape and many dtypes, NaN/inf and empty ones included."""
    return SCALAR_DTYPES.flatmap(
        lambda dtype: hnp.arrays(
            dtype, hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=5),
            elements=FLOATS if np.issubdtype(dtype, np.floating) else None,
        )
    )


def names_array() -> st.SearchStrategy[np.ndarray]:
    """Sample names, often with duplicates, sometimes of the wrong type."""
    return st.one_of(
        st.lists(st.sampled_from(["v1", "v2", "v3", "a/v4", ""]), max_size=6).map(np.array),
        st.lists(st.text(max_size=8), max_size=6).map(lambda x: np.array(x, dtype=str)),
        arrays_of(2),
    )


@st.composite
def score_npz(draw) -> bytes:
    """A plain-layout npz with arrays of any dtype and shape, keys sometimes missing."""
    n = draw(st.integers(0, 5))
    c = draw(st.sampled_from([0, 1, 3, 10**6]))  # 10**6 classes: an absurd count, as an empty or tiny array
    arrays = {
        "names": draw(st.one_of(st.just(np.array([f"v{i}" for i in range(n)])), names_array())),
        "labels": draw(st.one_of(st.just(np.arange(n) % max(c, 1)), arrays_of(2),
                                 st.just(np.full(n, 10**12, dtype=np.int64)))),
        "logits": draw(st.one_of(
            hnp.arrays(np.float32, (n, min(c, 4)), elements=FLOATS),
            st.just(np.zeros((n, c), dtype=np.float32) if n * c <= 10**6 else np.zeros((0, c), dtype=np.float32)),
            arrays_of(3),
        )),
        "features": draw(arrays_of(2)),
    }
    keep = draw(st.sets(st.sampled_from(sorted(arrays)), min_size=0, max_size=4))
    buffer = io.BytesIO()
    np.savez(buffer, **{k: v for k, v in arrays.items() if k in keep})
    return buffer.getvalue()


def npy_header_lie(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """An .npy whose header announces ``shape`` but whose data is a few bytes: reading it must not allocate the shape."""
    header = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\x00" * 64


def npz_of(members: dict[str, bytes]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


HUGE_SHAPES = st.sampled_from([(10**12,), (2**31, 2**31), (5_000_000, 1000), (3, 10**11)])


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Valid inputs of every kind, the seeds of the damage."""
    root = tmp_path_factory.mktemp("fuzz_seeds")
    rng = np.random.default_rng(0)
    out = {"dmcnet": DMCNET, "gt": GT_JSON, "multithumos": MULTITHUMOS_JSON}
    names = [f"Class{i % 3}/v_{i:02d}" for i in range(12)]
    labels, logits = np.arange(12) % 3, rng.normal(size=(12, 3)).astype(np.float32)
    np.savez(root / "good.npz", names=np.array(names), labels=labels, logits=logits)
    out["npz"] = root / "good.npz"
    out["csv"] = root / "good.csv"
    out["csv"].write_text("name,label,c0,c1,c2\n" + "".join(f"{n},{y},{','.join(f'{v:.3f}' for v in z)}\n"
                                                             for n, y, z in zip(names, labels, logits)))
    from scipy.io import savemat

    cells = np.empty((12, 1), dtype=object)
    cells[:, 0] = [f"v_Class{i % 3}_g01_c{i:02d}" for i in range(12)]
    savemat(root / "good.mat", {"scores_idt": logits.astype(np.float64), "vn_idt": cells, "gt_idt": (labels + 1)[:, None]})
    out["mat"] = root / "good.mat"
    out["list"] = root / "test_list.txt"
    out["list"].write_text("".join(f"{n} 30 {y}\n" for n, y in zip(names, labels)))
    out["pkl"] = root / "results.pkl"
    out["pkl"].write_bytes(pickle.dumps([row for row in logits], protocol=2))
    import torch  # imported here, not first under bounded_memory's address-space cap

    out["dump"] = root / "dump.pkl"  # MMAction2 1.x --dump: dicts of tensors
    out["dump"].write_bytes(pickle.dumps([{"pred_score": torch.from_numpy(z), "gt_label": torch.tensor([int(y)])}
                                          for z, y in zip(logits, labels)], protocol=2))
    out["npy"] = root / "scores.npy"
    np.save(out["npy"], logits)
    out["pred"] = root / "pred.json"
    out["pred"].write_text(json.dumps({"results": {"video_test_0000007": [
        {"label": "JavelinThrow", "segment": [275.0, 279.0], "score": 0.9}]}}))
    out["pool"] = root / "pool.toml"
    out["pool"].write_text('backbone = "a"\n[models.a]\narch = "frame2d"\nnum_classes = 5\n'
                           '[models.b]\narch = "conv3d_s"\nnum_classes = 5\nframes = 8\nfps = 8.0\n')
    out["costs"] = root / "costs.toml"
    out["costs"].write_text("[gflops]\nmv = 44.36\niframe = 287.79\n")
    out["manifest"] = root / "manifest.csv"
    out["manifest"].write_text("path,label\nvideos/a.mp4,0\nvideos/b.mp4,2\n")
    out["classes"] = root / "classes.txt"
    out["classes"].write_text("run\njump\nswim\n")
    return out


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _table_argv(files, bad: Path, spec: str | None = None) -> list:
    return ["table", "--scores", f"good={files['npz']}", "--scores", f"bad={spec or bad}", "--backbone", "good",
            "--out", bad.parent / "out"]


def _loads_into_a_table(path: Path) -> None:
    """A score file that loads must make a valid table on its own (the join then only checks agreement)."""
    scores = read_scores(path)
    PredictionTable(scores.names, scores.labels, {"m": scores.logits})


SCORE_SEEDS = ["npz", "dmcnet", "csv", "mat"]


@pytest.mark.parametrize("seed", SCORE_SEEDS)
def test_damaged_score_files(tmp_path, capsys, files, seed):
    path = tmp_path / f"BAD{files[seed].suffix}"

    @fuzz_settings()
    @given(data=damaged(files[seed].read_bytes()))
    def run(data):
        path.write_bytes(data)
        if check_loader(f"score {seed}", _loads_into_a_table, path) is not None:
            check_cli(capsys, _table_argv(files, path), path)

    run()


def test_generated_score_npz(tmp_path, capsys, files):
    path = tmp_path / "BAD.npz"

    @fuzz_settings()
    @given(data=st.one_of(score_npz(), HUGE_SHAPES.map(lambda s: npz_of({"names.npy": npy_header_lie((3,), "<U2"),
                                                                         "logits.npy": npy_header_lie(s)}))))
    def run(data):
        path.write_bytes(data)
        if check_loader("score npz (generated)", _loads_into_a_table, path) is not None:
            check_cli(capsys, _table_argv(files, path), path)

    run()


def test_generated_score_csv(tmp_path, capsys, files):
    path = tmp_path / "BAD.csv"
    field = st.one_of(st.sampled_from(["0", "1", "2", "nan", "inf", "-inf", "", "1|2", "0|99", "10000000000000000000000",
                                       "1e999", "x", "²", "-1", " 1"]), st.text(max_size=6))
    row = st.lists(field, min_size=0, max_size=6).map(lambda r: ",".join(r))
    header = st.sampled_from(["name,label,c0,c1,c2", "name,label,a,a,b", "name,label", "label,name,c0", ""])
    text = st.tuples(header, st.lists(row, max_size=8)).map(lambda t: "\n".join([t[0], *t[1]]) + "\n")

    @fuzz_settings()
    @given(data=st.one_of(text.map(str.encode), text.flatmap(reencoded)))
    def run(data):
        path.write_bytes(data)
        if check_loader("score csv (generated)", _loads_into_a_table, path) is not None:
            check_cli(capsys, _table_argv(files, path), path)

    run()


@pytest.mark.parametrize("seed", ["pkl", "dump", "npy"])
def test_damaged_list_order_scores(tmp_path, capsys, files, seed):
    path = tmp_path / f"BAD{files[seed].suffix}"

    def load(p):
        scores = read_scores(f"{p}:{files['list']}")
        PredictionTable(scores.names, scores.labels, {"m": scores.logits})

    huge = HUGE_SHAPES.map(lambda s: npy_header_lie(s)) if seed == "npy" else st.nothing()

    @fuzz_settings()
    @given(data=st.one_of(damaged(files[seed].read_bytes()), huge))
    def run(data):
        path.write_bytes(data)
        if check_loader(f"score {seed} + list", load, path) is not None:
            check_cli(capsys, _table_argv(files, path, f"{path}:{files['list']}"), path)

    run()


def test_damaged_and_generated_list_files(tmp_path, capsys, files):
    path = tmp_path / "BAD_list.txt"
    line = st.one_of(st.sampled_from(["Class0/v_00 30 0", "v 1", "v 30 99999999999999999999999", "v ² 1", "v -1",
                                      "x y z w", "v 30 3", "Class0/v_00 30 0"]), st.text(max_size=12))
    generated = st.lists(line, max_size=14).map(lambda ls: "\n".join(ls).encode())

    def load(p):
        scores = read_scores(f"{files['npy']}:{p}")
        PredictionTable(scores.names, scores.labels, {"m": scores.logits})

    @fuzz_settings()
    @given(data=st.one_of(text_damage(files["list"].read_text()), generated))
    def run(data):
        path.write_bytes(data)
        if check_loader("list file", load, path) is not None:
            check_cli(capsys, _table_argv(files, path, f"{files['npy']}:{path}"), path)

    run()


def test_damaged_table_npz(tmp_path, capsys, files):
    path = tmp_path / "BAD.npz"

    @fuzz_settings()
    @given(data=st.one_of(damaged(files["npz"].read_bytes()), score_npz()))
    def run(data):
        path.write_bytes(data)
        if check_loader("table npz", load_table, path) is not None:
            check_cli(capsys, ["table", "--table", path, "--backbone", "good", "--out", tmp_path / "out"], path)

    run()


# --- detection and ground-truth JSON ---------------------------------------------------------------

JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(), st.text(max_size=8))


def json_values() -> st.SearchStrategy:
    return st.recursive(JSON_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                        max_leaves=20)


def anything_or(shape: st.SearchStrategy) -> st.SearchStrategy:
    """The expected shape, or any JSON value in its place."""
    return st.one_of(shape, json_values())


SEGMENTS = anything_or(st.lists(st.one_of(st.floats(), st.text(max_size=4), st.integers(-(10**20), 10**20)), max_size=3))
ACTIVITYNET = st.fixed_dictionaries({"database": anything_or(st.dictionaries(st.text(max_size=6), anything_or(
    st.fixed_dictionaries({}, optional={"subset": json_values(), "duration": json_values(), "annotations": anything_or(
        st.lists(anything_or(st.fixed_dictionaries({}, optional={"segment": SEGMENTS, "label": json_values()})), max_size=3))})),
    max_size=3))})
MULTITHUMOS = st.dictionaries(st.text(max_size=6), st.fixed_dictionaries(
    {"actions": anything_or(st.lists(anything_or(st.lists(JSON_LEAVES, max_size=4)), max_size=3))},
    optional={"subset": json_values(), "duration": json_values()}), min_size=1, max_size=3)
RESULTS = st.fixed_dictionaries({"results": anything_or(st.dictionaries(st.text(max_size=6), anything_or(st.lists(anything_or(
    st.fixed_dictionaries({}, optional={"label": json_values(), "segment": SEGMENTS, "score": json_values()})), max_size=3)),
    max_size=3))})


def json_documents(shape: st.SearchStrategy) -> st.SearchStrategy[bytes]:
    """Documents of the expected shape with any value anywhere, other JSON, or 50,000 levels of nesting."""
    text = anything_or(shape).map(lambda doc: json.dumps(doc, allow_nan=True))
    deep = st.just("[" * 50_000 + "]" * 50_000)
    return st.one_of(text, deep).map(str.encode)


JSON_CASES = {
    "ground truth (ActivityNet)": ("gt", ACTIVITYNET, load_ground_truth, lambda f, bad: ["detection-map", "--gt", bad, "--pred", f["pred"]]),
    "ground truth (MultiThumos)": ("multithumos", MULTITHUMOS, load_ground_truth, lambda f, bad: ["detection-map", "--gt", bad, "--pred", f["pred"]]),
    "detections": ("pred", RESULTS, load_results, lambda f, bad: ["detection-map", "--gt", f["gt"], "--pred", bad]),
}


@pytest.mark.parametrize("kind", sorted(JSON_CASES))
def test_damaged_and_generated_json(tmp_path, capsys, files, kind):
    seed, shape, load, argv = JSON_CASES[kind]
    path = tmp_path / "BAD.json"
    good = files[seed].read_text()[:20_000]  # damage near the start reaches the parser quickly

    @fuzz_settings(3 * EXAMPLES)
    @given(data=st.one_of(text_damage(good), json_documents(shape)))
    def run(data):
        path.write_bytes(data)
        if check_loader(kind, load, path) is not None:
            check_cli(capsys, argv(files, path), path)

    run()


# --- pool and costs TOML ------------------------------------------------------------------------------

TOML_VALUES = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.floats(), st.booleans(), st.text(string.printable, max_size=10),
    st.sampled_from([0, -1, 10**12, 2**63 - 1, "frame2d", "conv3d_s", "x3d_xs", "nope", "a", "b", [1, "a"], {"x": 1}]),
)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


@st.composite
def pool_toml(draw) -> str:
    keys = ["arch", "checkpoint", "sha256", "num_classes", "clips", "crops", "frames", "stride", "crop", "fps", "other"]
    lines = [f"backbone = {toml_value(draw(TOML_VALUES))}"]
    for name in draw(st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3)):
        lines.append(f"[models.{name}]")
        for key in draw(st.lists(st.sampled_from(keys), unique=True, max_size=6)):
            lines.append(f"{key} = {toml_value(draw(TOML_VALUES))}")
    return "\n".join(lines) + "\n"


@st.composite
def costs_toml(draw) -> str:
    lines = [draw(st.sampled_from(["[gflops]", "[ms]", "", "gflops = 3"]))]
    for name in draw(st.lists(st.sampled_from(["mv", "iframe", "a b", "x"]), unique=True, max_size=4)):
        lines.append(f"{json.dumps(name)} = {toml_value(draw(TOML_VALUES))}")
    return "\n".join(lines) + "\n"


def _finite_positive_costs(path: Path) -> None:
    """Costs that load are usable: finite and positive (an infinite cost would make every share NaN)."""
    assert all(math.isfinite(v) and v > 0 for v in load_costs_toml(path).values())


TOML_CASES = {
    "pool config": ("pool", pool_toml(), load_pool_config, lambda f, bad: ["zoo", "--pool", bad]),
    "costs": ("costs", costs_toml(), _finite_positive_costs,
              lambda f, bad: ["table", "--table", f["npz"], "--backbone", "good", "--costs", bad, "--out", bad.parent / "out"]),
}


@pytest.mark.parametrize("kind", sorted(TOML_CASES))
def test_damaged_and_generated_toml(tmp_path, capsys, files, kind):
    seed, generated, load, argv = TOML_CASES[kind]
    path = tmp_path / "BAD.toml"

    @fuzz_settings()
    @given(data=st.one_of(text_damage(files[seed].read_text()), generated.map(str.encode)))
    @example(data=b'backbone = [1]\n[models.a]\narch = "frame2d"\n')  # found by hand: an unhashable backbone
    @example(data=b"[gflops]\nmv = inf\n")
    def run(data):
        path.write_bytes(data)
        if check_loader(kind, load, path) is not None:
            check_cli(capsys, argv(files, path), path)

    run()


# --- manifests --------------------------------------------------------------------------------------


def test_damaged_and_generated_manifests(tmp_path, files):
    """Extraction manifests, path-label lists and class-name files (the CLI reads them after loading a pool)."""
    path = tmp_path / "BAD.csv"
    line = st.one_of(st.sampled_from(["path,label", "videos/a.mp4,0", "videos/a.mp4,0", "v.mp4,run", "v.mp4,²", ",1",
                                      "v.mp4,99999999999999999999999", "a,b,c", '"unclosed,1', "v.mp4 0", "v.mp4 30 1"]),
                     st.text(max_size=12))
    generated = st.lists(line, max_size=8).map(lambda ls: "\n".join(ls).encode())
    loaders = {
        "manifest": lambda p: read_manifest(p, 3, ["run", "jump", "swim"]),
        "manifest (class indices)": lambda p: read_manifest(p, 3),
        "path-label list": lambda p: read_path_label_list(p, num_classes=3),
        "class names": read_class_names,
    }

    @fuzz_settings(2 * EXAMPLES)
    @given(data=st.one_of(text_damage(files["manifest"].read_text()), generated), kind=st.sampled_from(sorted(loaders)))
    def run(data, kind):
        path.write_bytes(data)
        check_loader(kind, loaders[kind], path)

    run()
