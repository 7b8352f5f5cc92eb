"""Score-file layouts beyond DMC-Net's, on small files written here: scores in list order, mmaction2
pickles, IDT ``.mat``, class mapping by name, name normalisation, and every bad input the issue lists."""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import savemat

from condsel.cli import main
from condsel.datasets.ucf101 import ucf101_join
from condsel.selection.data.importers import join_scores, read_scores, sample_key, split_source
from condsel.selection.data.importers.join import class_key

CLASSES = ["Archery", "Bowling", "Diving"]
# three UCF101-style videos per class, in list (class, clip) order
VIDEOS = [f"{c}/v_{c}_g0{g}_c01" for c in CLASSES for g in (1, 2, 3)]
LABELS = np.repeat(np.arange(3), 3)


def _logits(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(len(VIDEOS), 3)).astype(np.float32)


def _list(path: Path, names=VIDEOS, labels=LABELS, frames: bool = True) -> Path:
    path.write_text("".join(f"{n} {100 + i} {l}\n" if frames else f"{n} {l}\n" for i, (n, l) in enumerate(zip(names, labels))))
    return path


def _dmc_like(path: Path, logits: np.ndarray, names=VIDEOS, labels=LABELS, suffix=".avi") -> Path:
    """The plain named layout, with DMC-Net's ``Class/v_..._cXX.avi`` names."""
    np.savez(path, names=np.asarray([n + suffix for n in names]), labels=np.asarray(labels), logits=logits)
    return path


# --- scores in list order ------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", [2, 5])
def test_mmaction2_results_pickle_follows_its_list(tmp_path, protocol):
    logits = _logits()
    pkl = tmp_path / "results.pkl"
    pkl.write_bytes(pickle.dumps([row for row in logits], protocol=protocol))  # mmaction2 --out: one array per sample
    scores = read_scores(f"{pkl}:{_list(tmp_path / 'test.txt')}")
    assert scores.names.tolist() == VIDEOS and scores.labels.tolist() == LABELS.tolist()
    np.testing.assert_array_equal(scores.logits, logits)
    assert scores.class_names == CLASSES  # from the list's class folders


def test_two_field_lists_and_npy_scores(tmp_path):
    logits = _logits(1)
    np.save(tmp_path / "s.npy", logits[:, None, :])  # (N, 1, C), as after averaging clips
    scores = read_scores(tmp_path / "s.npy", list_file=_list(tmp_path / "l.txt", frames=False))
    np.testing.assert_array_equal(scores.logits, logits)
    assert scores.labels.tolist() == LABELS.tolist()


def test_seqvlad_layout_rows_in_sorted_list_order_are_realigned(tmp_path, caplog):
    """SeqVLAD's files follow the list sorted case-sensitively; their stored labels say so."""
    names = ["Hammering/v_Hammering_g01_c01", "HammerThrow/v_HammerThrow_g01_c01", "HammerThrow/v_HammerThrow_g02_c01"]
    labels = np.array([0, 1, 1])  # classInd order: Hammering before HammerThrow
    order = np.argsort(names)  # numpy sorts like Python: 'T' < 'i', so HammerThrow first
    logits = np.eye(3, 2, dtype=np.float32)[[1, 1, 0]]  # each row predicts its true class, in sorted order
    rows = np.empty((3, 2), dtype=object)
    for i, j in enumerate(order):
        rows[i, 0], rows[i, 1] = logits[i].reshape(1, 1, 2), labels[j]
    np.savez(tmp_path / "flow.npz", scores=rows, labels=labels[order], allow_pickle=True)
    scores = read_scores(tmp_path / "flow.npz", list_file=_list(tmp_path / "flow.txt", names, labels))
    assert "sorted by path" in caplog.text
    assert scores.names.tolist() == [names[j] for j in order]
    assert (scores.logits.argmax(1) == scores.labels).all()


def test_stored_labels_that_match_no_order_name_both_files(tmp_path):
    rows = np.empty((9, 2), dtype=object)
    for i in range(9):
        rows[i, 0], rows[i, 1] = np.zeros((1, 3)), (LABELS[i] + 1) % 3
    np.savez(tmp_path / "s.npz", scores=rows, labels=(LABELS + 1) % 3, allow_pickle=True)
    with pytest.raises(ValueError, match=r"s\.npz row 0 has label 1 but .*l\.txt line 1 .* has 0"):
        read_scores(tmp_path / "s.npz", list_file=_list(tmp_path / "l.txt"))


@pytest.mark.parametrize("rows, word", [(8, "longer"), (10, "shorter")])
def test_list_and_score_file_of_different_lengths(tmp_path, rows, word):
    np.save(tmp_path / "s.npy", np.zeros((rows, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=rf"l\.txt has 9 samples but .*s\.npy has {rows} score rows .*{word}"):
        read_scores(f"{tmp_path / 's.npy'}:{_list(tmp_path / 'l.txt')}")


def test_duplicate_names_in_a_list(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((9, 3), dtype=np.float32))
    names = VIDEOS[:8] + [VIDEOS[0]]
    with pytest.raises(ValueError, match=r"l\.txt: duplicate sample name Archery/v_Archery_g01_c01"):
        read_scores(tmp_path / "s.npy", list_file=_list(tmp_path / "l.txt", names))


def test_malformed_list_line_names_the_row(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((9, 3), dtype=np.float32))
    lines = _list(tmp_path / "l.txt").read_text().splitlines()
    lines[4] = "Bowling/v_Bowling_g02_c01 12 x"
    (tmp_path / "l.txt").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"l\.txt:5: expected '<path> <num_frames> <label>'"):
        read_scores(tmp_path / "s.npy", list_file=tmp_path / "l.txt")


def test_score_file_without_names_needs_its_list(tmp_path):
    (tmp_path / "r.pkl").write_bytes(pickle.dumps([np.zeros(3)]))
    with pytest.raises(ValueError, match=r"r\.pkl: holds no sample names; .*SCORES:LIST"):
        read_scores(tmp_path / "r.pkl")


def test_colon_syntax_never_splits_an_existing_path(tmp_path):
    odd = tmp_path / "a:b.npz"
    odd.write_bytes(b"")
    assert split_source(odd) == (odd, None)
    assert split_source(f"{tmp_path}/s.pkl:{tmp_path}/l.txt") == (tmp_path / "s.pkl", tmp_path / "l.txt")


# --- pickles holding anything but arrays -----------------------------------------------------------

class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("payload, refused", [
    ([_Exploit()], r"builtins\.print"),
    ([torch.nn.Parameter(torch.zeros(3))], r"torch\._utils\._rebuild_parameter"),
])
def test_pickles_with_objects_are_refused_naming_the_file(tmp_path, payload, refused):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(payload))
    with pytest.raises(ValueError, match=rf"evil\.pkl: cannot read pickle safely: refusing to unpickle {refused}"):
        read_scores(tmp_path / "evil.pkl", list_file=_list(tmp_path / "l.txt"))


# --- corrupt files: the message names the file ---------------------------------------------------

@pytest.mark.parametrize("name, content", [
    ("CORRUPT.npz", b"\x80\x04K\x01."),  # a bare pickle: numpy's own message does not name the file
    ("truncated.npz", None),
    ("garbage.mat", b"not a MATLAB file at all"),
    ("broken.csv", b"\xff\xfe\x00"),
])
def test_unreadable_score_files_name_themselves(tmp_path, name, content):
    path = tmp_path / name
    if content is None:
        _dmc_like(tmp_path / "good.npz", _logits())
        path.write_bytes((tmp_path / "good.npz").read_bytes()[:200])
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(name)):
        read_scores(path)


def test_cli_corrupt_npz_exits_2_naming_it(tmp_path, capsys):
    good = _dmc_like(tmp_path / "GOOD.npz", _logits())
    (tmp_path / "CORRUPT.npz").write_bytes(b"\x80\x04K\x01.")
    argv = ["table", "--scores", f"a={good}", "--scores", f"b={tmp_path / 'CORRUPT.npz'}",
            "--backbone", "a", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "CORRUPT.npz" in capsys.readouterr().err
    assert not (tmp_path / "out" / "summary.json").exists()


# --- IDT .mat ------------------------------------------------------------------------------------

def _idt(path: Path, names, labels_1based, scores) -> Path:
    cell = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        cell[i, 0] = np.array([n])
    savemat(path, {"scores_idt": scores, "vn_idt": cell, "gt_idt": np.asarray(labels_1based, dtype=np.uint8)[:, None]})
    return path


def test_idt_mat_layout(tmp_path):
    stems = [v.split("/")[1] for v in VIDEOS]
    scores = read_scores(_idt(tmp_path / "idt.mat", stems, LABELS + 1, _logits(2).astype(np.float64)))
    assert scores.names.tolist() == stems and scores.labels.tolist() == LABELS.tolist()  # 1-based -> 0-based
    assert scores.class_names == CLASSES  # from the v_<Class>_gXX_cYY names
    np.testing.assert_allclose(scores.logits, _logits(2), rtol=1e-6)


def test_idt_zero_label_is_not_1_based(tmp_path):
    stems = [v.split("/")[1] for v in VIDEOS]
    with pytest.raises(ValueError, match=r"idt\.mat: gt_idt must hold 1-based class labels"):
        read_scores(_idt(tmp_path / "idt.mat", stems, LABELS, _logits()))


def test_idt_joins_dmcnet_names_and_needs_a_cost(tmp_path, capsys):
    stems = [v.split("/")[1] for v in VIDEOS]
    idt = _idt(tmp_path / "idt.mat", stems[::-1], (LABELS + 1)[::-1], _logits(3)[::-1].astype(np.float64))
    dmc = _dmc_like(tmp_path / "mv.npz", _logits())
    per_model = {"mv": read_scores(dmc), "idt": read_scores(idt)}
    table = join_scores(per_model)
    assert table.names.tolist() == [v + ".avi" for v in VIDEOS]  # the first file's spelling is kept
    np.testing.assert_allclose(table.logits["idt"], _logits(3), rtol=1e-6)
    assert table.groups is None  # the importers know no dataset: grouping comes from the caller
    assert ucf101_join(per_model).groups.tolist() == [f"{v.split('/')[0]}_g0{g}" for v, g in zip(VIDEOS, [1, 2, 3] * 3)]
    argv = ["table", "--scores", f"mv={dmc}", "--scores", f"idt={idt}", "--backbone", "mv",
            "--costs", str(_toml(tmp_path, mv=40.0)), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert f"{tmp_path / 'costs.toml'}: no GFLOPs for model(s) ['idt']" in capsys.readouterr().err


def _toml(tmp_path: Path, **costs) -> Path:
    path = tmp_path / "costs.toml"
    path.write_text("[gflops]\n" + "".join(f"{k} = {v}\n" for k, v in costs.items()))
    return path


# --- class mapping by name -----------------------------------------------------------------------

def test_classes_ordered_differently_are_mapped_by_name(tmp_path):
    """A CSV whose columns name classes in another order than the DMC-like file's class folders."""
    logits = _logits(4)
    perm = [2, 0, 1]  # CSV column j holds class perm[j]
    rows = ["name,label," + ",".join(CLASSES[p] for p in perm)]
    inverse = np.argsort(perm)
    for v, l, row in zip(VIDEOS, LABELS, logits):
        rows.append(f"{v}.avi,{inverse[l]}," + ",".join(str(x) for x in row[perm]))
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    table = join_scores({"mv": read_scores(_dmc_like(tmp_path / "mv.npz", _logits())), "csv": read_scores(tmp_path / "m.csv")})
    assert table.class_names == CLASSES
    np.testing.assert_allclose(table.logits["csv"], logits, rtol=1e-6)


def test_unmappable_classes_name_both_files(tmp_path):
    other = [v.replace("Diving/", "Fencing/") for v in VIDEOS]  # same videos, another class folder
    a = read_scores(_dmc_like(tmp_path / "a.npz", _logits()))
    b = read_scores(_dmc_like(tmp_path / "b.npz", _logits(), names=other))
    with pytest.raises(ValueError, match=r"classes of .*b\.npz and .*a\.npz cannot be mapped by name: .*Fencing.*Diving"):
        join_scores({"a": a, "b": b})


def test_class_and_sample_keys():
    assert class_key("HandStandPushups") == class_key("HandstandPushups")  # UCF101 spells it both ways
    assert class_key("arm wrestling") == class_key("arm_wrestling")
    assert sample_key("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi") == "v_ApplyEyeMakeup_g01_c01"
    assert sample_key("clips/a.b.c") == "a.b.c"  # only video suffixes are dropped


def test_ambiguous_base_names_are_not_matched(tmp_path):
    a = read_scores(_dmc_like(tmp_path / "a.npz", np.zeros((2, 2), np.float32), names=["x/v1", "y/v1"], labels=[0, 1]))
    b = read_scores(_dmc_like(tmp_path / "b.npz", np.zeros((2, 2), np.float32), names=["x/v1", "z/v1"], labels=[0, 1]))
    with pytest.raises(ValueError, match=r"b\.npz \(b\) and .*a\.npz \(a\) hold different samples"):
        join_scores({"a": a, "b": b})


def test_npz_that_is_a_pickle_zip_member_is_still_safe(tmp_path):
    """An npz whose member is an object array of a non-array class is refused, naming file and member."""
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w") as z:
        with z.open("names.npy", "w") as f:
            np.save(f, np.array([_Exploit()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"x\.npz:names\.npy.*refusing to unpickle builtins\.print"):
        read_scores(path)
