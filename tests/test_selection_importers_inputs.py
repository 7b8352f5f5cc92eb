"""The score files a real user has (issue 27, items 5-9): spreadsheet CSV headers and class-name labels,
an npz without class names beside a reordered CSV, probabilities saved instead of logits, costs files
with typos, and MMAction2 1.x ``--dump`` pickles of torch tensors (and malicious ones)."""

from __future__ import annotations

import collections
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import expit, softmax

from condsel.cli import main
from condsel.selection.data.importers import read_scores
from condsel.selection.method.fusion import probabilities
from condsel.sources import load_table, resolve_table

CLASSES = [f"class_{i}" for i in range(5)]
N = 30
NAMES = [f"vid_{i:04d}" for i in range(N)]
LABELS = np.arange(N) % 5


def _logits(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=2.0, size=(N, 5)).astype(np.float32)


def _csv(path: Path, logits: np.ndarray, header: str | None = None, labels=None, columns=None, bom: bool = False) -> Path:
    columns = list(range(5)) if columns is None else columns
    labels = [str(columns.index(y)) for y in LABELS] if labels is None else labels  # indices into its own columns
    header = header or "name,label," + ",".join(CLASSES[c] for c in columns)
    rows = [f"{n},{y}," + ",".join(f"{logits[i, c]:.6f}" for c in columns) for i, (n, y) in enumerate(zip(NAMES, labels))]
    path.write_text(("\ufeff" if bom else "") + "\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _npz(path: Path, logits: np.ndarray, **extra) -> Path:
    np.savez(path, names=np.asarray(NAMES), labels=LABELS, logits=logits, **extra)
    return path


def _cli_error(capsys, argv) -> str:
    """The one line a failed command prints, after checking it exits 2."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# --- 5. CSV headers and labels ------------------------------------------------------------------------

@pytest.mark.parametrize("header, bom", [
    ("name,label," + ",".join(CLASSES), True),  # Excel's "CSV UTF-8"
    ("Name,Label," + ",".join(CLASSES), False),
    ("name, label, " + ", ".join(CLASSES), False),
    (" NAME ,Label ," + ",".join(CLASSES), True),
])
def test_csv_headers_as_spreadsheets_write_them(tmp_path, header, bom):
    logits = _logits(0)
    plain = read_scores(_csv(tmp_path / "plain.csv", logits))
    scores = read_scores(_csv(tmp_path / "sheet.csv", logits, header=header, bom=bom))
    assert scores.names.tolist() == NAMES and scores.labels.tolist() == LABELS.tolist()
    assert scores.class_names == CLASSES
    np.testing.assert_array_equal(scores.logits, plain.logits)
    np.testing.assert_allclose(scores.logits, logits, atol=1e-6)


def test_a_refused_header_is_quoted(tmp_path, capsys):
    bad = _csv(tmp_path / "bad.csv", _logits(0), header="video,label," + ",".join(CLASSES))
    good = _npz(tmp_path / "good.npz", _logits(1))
    line = _cli_error(capsys, ["table", "--scores", f"a={good}", "--scores", f"b={bad}", "--out", tmp_path / "out"])
    assert f"{bad}: header must be 'name,label,<class score columns...>', read 'video,label,class_0,class_1," in line


def test_labels_may_name_the_header_classes(tmp_path):
    logits = _logits(0)
    named = [CLASSES[y] for y in LABELS]
    named[1] = " CLASS_1 "  # compared as class names are across files: case and spaces ignored
    scores = read_scores(_csv(tmp_path / "m.csv", logits, labels=named))
    assert scores.labels.tolist() == LABELS.tolist()
    tags = ["class_1|class_4", "0|class_2"] + [CLASSES[y] for y in LABELS[2:]]
    multi = read_scores(_csv(tmp_path / "tags.csv", logits, labels=tags))
    assert multi.labels.shape == (N, 5)
    assert multi.labels[0].tolist() == [0, 1, 0, 0, 1] and multi.labels[1].tolist() == [1, 0, 1, 0, 0]


def test_a_label_naming_no_class_says_what_the_column_holds(tmp_path, capsys):
    labels = [str(y) for y in LABELS]
    labels[1] = "class_17"
    bad = _csv(tmp_path / "m.csv", _logits(0), labels=labels)
    line = _cli_error(capsys, ["table", "--scores", f"a={_npz(tmp_path / 'a.npz', _logits(1))}", "--scores", f"b={bad}",
                               "--out", tmp_path / "out"])
    assert (f"{bad}: row 3: label 'class_17' is neither a class index (0 to 4) nor a class column of the header "
            "(class_0, class_1") in line


# --- 6. an npz without class names beside a CSV with reordered columns --------------------------------

PERMUTED = [2, 0, 4, 1, 3]


def test_npz_without_class_names_beside_a_reordered_csv_says_how_to_name_them(tmp_path, capsys):
    small = _npz(tmp_path / "small.npz", _logits(0))
    large = _csv(tmp_path / "large_perm.csv", _logits(1), columns=PERMUTED)
    line = _cli_error(capsys, ["table", "--scores", f"small={small}", "--scores", f"large={large}", "--out", tmp_path / "out"])
    assert "label of vid_0000 disagrees" in line
    assert f"{small} carries no class names, so its columns could not be matched to {large}'s by name" in line
    assert "an npz: a 'classes' array, one name per score column" in line


def test_an_npz_classes_array_joins_by_class_name(tmp_path):
    small_logits, large_logits = _logits(0), _logits(1)
    small = _npz(tmp_path / "small.npz", small_logits, classes=np.asarray(CLASSES))
    large = _csv(tmp_path / "large_perm.csv", large_logits, columns=PERMUTED)
    table = load_table({"small": small, "large": large})
    assert table.class_names == CLASSES and table.labels.tolist() == LABELS.tolist()
    np.testing.assert_array_equal(table.logits["small"], small_logits)
    np.testing.assert_allclose(table.logits["large"], large_logits, atol=1e-6)  # columns back in class order


def test_an_npz_classes_array_of_the_wrong_length_is_refused(tmp_path):
    bad = _npz(tmp_path / "small.npz", _logits(0), classes=np.asarray(CLASSES[:4]))
    with pytest.raises(ValueError, match=r"small\.npz: 'classes' has shape \(4,\), expected \(5,\): one name per score column"):
        read_scores(bad)


# --- 7. probabilities saved instead of logits ---------------------------------------------------------

def _warnings(caplog, path: Path) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and str(path) in r.getMessage()]


@pytest.mark.parametrize("layout", ["npz", "csv"])
def test_softmax_scores_are_read_as_probabilities(tmp_path, caplog, layout):
    """PySlowFast / MMAction2 save softmax rows; the engine must see those probabilities, not softmax(p)."""
    p = softmax(_logits(0).astype(np.float64), axis=1).astype(np.float32)
    path = _npz(tmp_path / "slowfast.npz", p) if layout == "npz" else _csv(tmp_path / "slowfast.csv", p)  # 6 decimals
    with caplog.at_level(logging.WARNING):
        scores = read_scores(path)
    np.testing.assert_allclose(probabilities(scores.logits, multilabel=False), p, atol=1e-5)
    np.testing.assert_allclose(scores.logits, np.log(p), atol=1e-6 if layout == "npz" else 1e-3)
    [said] = _warnings(caplog, path)  # once per file
    assert "read as softmax probabilities" in said
    # read as logits, as before, the top class would keep but every confidence would flatten towards 1/C
    assert probabilities(p, multilabel=False).max() < 0.5 < p.max()


def test_sigmoid_scores_of_a_multi_label_file_are_read_as_probabilities(tmp_path, caplog):
    p = expit(_logits(0).astype(np.float64)).astype(np.float32)
    tags = ["1|4"] + [str(y) for y in LABELS[1:]]
    path = _csv(tmp_path / "tags.csv", p, labels=tags)
    with caplog.at_level(logging.WARNING):
        scores = read_scores(path)
    assert scores.labels.ndim == 2
    np.testing.assert_allclose(probabilities(scores.logits, multilabel=True), p, atol=2e-6)
    [said] = _warnings(caplog, path)
    assert "read as sigmoid probabilities" in said


def test_logits_stay_logits_and_unnormalised_unit_scores_are_flagged(tmp_path, caplog):
    logits = _logits(0)
    with caplog.at_level(logging.WARNING):
        raw = read_scores(_npz(tmp_path / "raw.npz", logits))
        unit = np.random.default_rng(1).random((N, 5)).astype(np.float32)
        kept = read_scores(_npz(tmp_path / "unit.npz", unit))
    np.testing.assert_array_equal(raw.logits, logits)
    assert not _warnings(caplog, tmp_path / "raw.npz")
    np.testing.assert_array_equal(kept.logits, unit)
    [said] = _warnings(caplog, tmp_path / "unit.npz")
    assert "rows do not sum to 1: used as logits as stored" in said


# --- 8. costs files -----------------------------------------------------------------------------------

@pytest.fixture
def pool(tmp_path) -> list[str]:
    small = _npz(tmp_path / "small.npz", _logits(0), classes=np.asarray(CLASSES))
    large = _csv(tmp_path / "large.csv", _logits(1))
    return ["--scores", f"small={small}", "--scores", f"large={large}"]


def test_a_costs_key_naming_no_model_is_an_error_with_a_suggestion(tmp_path, capsys, pool):
    costs = tmp_path / "costs.toml"
    costs.write_text("[gflops]\nsmall = 1\nlarg = 3\n")
    line = _cli_error(capsys, ["table", *pool, "--costs", costs, "--out", tmp_path / "out"])
    assert line.endswith(f"{costs}: [gflops] names no model of the pool: 'larg' (did you mean 'large'?); "
                         "the pool has ['small', 'large']")


def test_missing_gflops_name_the_costs_file(tmp_path, capsys, pool):
    costs = tmp_path / "costs.toml"
    costs.write_text("[gflops]\nsmall = 1\n")
    line = _cli_error(capsys, ["table", *pool, "--costs", costs, "--out", tmp_path / "out"])
    assert line.endswith(f"{costs}: no GFLOPs for model(s) ['large'] (no default either); add them to its [gflops] table")


def test_a_costs_file_may_name_pool_models_left_out_by_models(tmp_path, pool):
    costs = tmp_path / "costs.toml"
    costs.write_text("[gflops]\nsmall = 1\nlarge = 3\n")
    source = {"small": tmp_path / "small.npz", "large": tmp_path / "large.csv"}
    table, _, unit = resolve_table(source, models=["small"], costs=costs)
    assert table.gflops == {"small": 1.0} and unit == "gflops"


# --- 9. MMAction2 1.x --dump pickles ------------------------------------------------------------------

def _test_list(path: Path, labels=LABELS) -> Path:
    path.write_text("".join(f"videos/{n}.mp4 {y}\n" for n, y in zip(NAMES, labels)))
    return path


def _dump(path: Path, p: torch.Tensor, version: str) -> Path:
    """``tools/test.py --dump`` as MMAction2 1.x writes it: mmengine pickles ``ActionDataSample.to_dict()`` (protocol 2)."""
    items = []
    for i in range(N):
        meta = {"img_shape": (224, 224), "num_classes": 5}
        if version == "1.0":  # LabelData fields
            fields = {"gt_labels": {"item": torch.tensor([int(LABELS[i])])}, "pred_scores": {"item": p[i].clone()},
                      "pred_labels": {"item": p[i].argmax().reshape(1)}}
        else:
            fields = {"gt_label": torch.tensor([int(LABELS[i])]), "pred_score": p[i].clone(),
                      "pred_label": p[i].argmax().reshape(1)}
        items.append({**meta, **fields})
    path.write_bytes(pickle.dumps(items, protocol=2))
    return path


@pytest.mark.parametrize("version", ["1.0", "1.2"])
def test_mmaction2_1x_dump_is_read_with_its_list(tmp_path, version):
    p = torch.softmax(torch.from_numpy(_logits(0)), dim=1)  # the default average_clips='prob' saves softmax scores
    dump = _dump(tmp_path / "results.pkl", p, version)
    scores = read_scores(f"{dump}:{_test_list(tmp_path / 'test.txt')}")
    assert scores.names.tolist() == [f"videos/{n}.mp4" for n in NAMES] and scores.labels.tolist() == LABELS.tolist()
    np.testing.assert_allclose(softmax(scores.logits, axis=1), p.numpy(), atol=1e-6)


def test_a_dump_whose_labels_disagree_with_the_list_names_both(tmp_path, capsys):
    dump = _dump(tmp_path / "results.pkl", torch.softmax(torch.from_numpy(_logits(0)), dim=1), "1.2")
    listing = _test_list(tmp_path / "test.txt", labels=(LABELS + 1) % 5)
    line = _cli_error(capsys, ["table", "--scores", f"a={dump}:{listing}", "--scores", f"b={dump}:{listing}",
                               "--out", tmp_path / "out"])
    assert f"{dump} row 0 has label 0 but {listing} line 1 (videos/vid_0000.mp4) has 1" in line


class _Opens:
    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


class _StorageFrom:
    """A pickled 'storage' whose bytes are any pickle: torch's own _load_from_bytes would run it."""

    def __init__(self, payload: bytes):
        self.payload = payload

    def __reduce__(self):
        return (torch.storage._load_from_bytes, (self.payload,))


class _View:
    def __init__(self, storage, size, stride):
        self.args = (storage, 0, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def _evil_payloads(marker: Path) -> dict[str, tuple[object, str]]:
    return {
        "storage running code": ([{"pred_score": _StorageFrom(pickle.dumps(_Opens(marker), protocol=2))}],
                                 "refusing a tensor storage that is not plain data"),
        "view past its storage": ([{"pred_score": _View(torch.zeros(3)._typed_storage(), (1000,), (1,))}],
                                  "tensor of size (1000,) does not fit its storage of 3 values"),
        "array as storage": ([{"pred_score": _View(np.zeros(3), (3,), (1,))}],
                             "refusing a tensor that is not a plain view of its storage"),
        "other torch global": ([{"pred_score": torch.nn.Parameter(torch.zeros(3))}],
                               "refusing to unpickle torch._utils._rebuild_parameter"),
        "code beside tensors": ([{"pred_score": torch.zeros(3), "meta": _Opens(marker)}], "refusing to unpickle io.open"),
    }


@pytest.mark.parametrize("case", list(_evil_payloads(Path("x"))))
def test_a_malicious_dump_is_refused_without_running_it(tmp_path, capsys, case):
    marker = tmp_path / "pwned"
    payload, refusal = _evil_payloads(marker)[case]
    evil = tmp_path / "results.pkl"
    evil.write_bytes(pickle.dumps(payload, protocol=2))
    listing = _test_list(tmp_path / "test.txt")
    line = _cli_error(capsys, ["table", "--scores", f"a={_npz(tmp_path / 'a.npz', _logits(0))}",
                               "--scores", f"b={evil}:{listing}", "--out", tmp_path / "out"])
    assert f"{evil}: cannot read pickle safely: {refusal}" in line
    assert not marker.exists()
