"""Manifest readers (generic lists, Kinetics, HVU) on the real Kinetics-400 and HVU label maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES

from condsel.datasets.hvu import read_hvu_csv, read_hvu_vocabulary
from condsel.datasets.kinetics import read_kinetics_csv
from condsel.datasets.manifests import read_class_names, read_path_label_list

KINETICS = FIXTURES / "labelmaps" / "kinetics400.txt"
HVU = FIXTURES / "labelmaps" / "hvu.json"


def _lines(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_kinetics_class_names_are_the_400_in_file_order():
    names = read_class_names(KINETICS)
    assert len(names) == 400
    assert names == _lines(KINETICS)


def test_kinetics_csv_entries(tmp_path):
    csv_path = _write(
        tmp_path / "val.csv",
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        "arm wrestling,0a1b2c3d4e5,14,24,val,0\n"
        "zumba,ZZZZZZZZZZZ,0,10,val,0\n"
        "abseiling,-_abc123xyz,305,315,train,1\n",
    )
    lines = _lines(KINETICS)
    entries = read_kinetics_csv(csv_path, "/videos/k400", KINETICS)
    assert [e.label for e in entries] == [lines.index("arm wrestling"), lines.index("zumba"), lines.index("abseiling")]
    assert entries[0].path == Path("/videos/k400/arm wrestling/0a1b2c3d4e5_000014_000024.mp4")
    assert entries[0].name == "arm wrestling/0a1b2c3d4e5_000014_000024.mp4"
    assert entries[2].path.name == "-_abc123xyz_000305_000315.mp4"
    val = read_kinetics_csv(csv_path, "/videos/k400", KINETICS, split="val", class_subdirs=False)
    assert [e.path for e in val] == [
        Path("/videos/k400/0a1b2c3d4e5_000014_000024.mp4"),
        Path("/videos/k400/ZZZZZZZZZZZ_000000_000010.mp4"),
    ]


def test_kinetics_csv_errors_name_file_and_row(tmp_path):
    bad_header = _write(tmp_path / "a.csv", "youtube_id,time_start,time_end,split\nabc,1,2,val\n")
    with pytest.raises(ValueError, match=r"a\.csv: header .* lacks column\(s\) \['label'\]"):
        read_kinetics_csv(bad_header, tmp_path, KINETICS)
    unknown = _write(
        tmp_path / "b.csv",
        "label,youtube_id,time_start,time_end,split\nzumba,x,0,10,val\nunderwater zumba,y,0,10,val\n",
    )
    with pytest.raises(ValueError, match=r"b\.csv:3: label 'underwater zumba' is not in"):
        read_kinetics_csv(unknown, tmp_path, KINETICS, split="train")  # checked even outside the split
    bad_time = _write(tmp_path / "c.csv", "label,youtube_id,time_start,time_end,split\nzumba,x,10,5,val\n")
    with pytest.raises(ValueError, match=r"c\.csv:2: need 0 <= time_start < time_end"):
        read_kinetics_csv(bad_time, tmp_path, KINETICS)


def test_path_label_list(tmp_path):
    listing = _write(tmp_path / "test.csv", "a/v1.mp4 3\nclass b/v 2.mp4 0\n\n")
    entries = read_path_label_list(listing, "/data", num_classes=4)
    assert [(e.name, e.path, e.label) for e in entries] == [
        ("a/v1.mp4", Path("/data/a/v1.mp4"), 3),
        ("class b/v 2.mp4", Path("/data/class b/v 2.mp4"), 0),
    ]
    with pytest.raises(ValueError, match=r"test\.csv:1: label 4 out of range for 4 classes"):
        read_path_label_list(_write(tmp_path / "test.csv", "a.mp4 4\n"), num_classes=4)
    with pytest.raises(ValueError, match=r"test\.csv:2: expected '<path> <label>'"):
        read_path_label_list(_write(tmp_path / "test.csv", "a.mp4 1\nb.mp4 x\n"))


def test_hvu_vocabulary_follows_the_json():
    doc = json.loads(HVU.read_text())
    tags, categories = read_hvu_vocabulary(HVU)
    assert tags == [t for members in doc.values() for t in members]
    assert list(categories) == list(doc)
    for category, members in doc.items():
        assert tags[categories[category]] == members


def test_hvu_csv_multi_hot(tmp_path):
    doc = json.loads(HVU.read_text())
    offsets = {c: sum(len(doc[d]) for d in list(doc)[: list(doc).index(c)]) for c in doc}
    csv_path = _write(
        tmp_path / "hvu_val.csv",
        "Tags,youtube_id,time_start,time_end\n"
        "abseiling|afro|aisle,abcdefghijk,5.5,15.5\n"
        "arm_wrestling,kjihgfedcba,0,10\n",
    )
    entries = read_hvu_csv(csv_path, "/hvu", HVU)
    first = entries[0]
    assert first.path == Path("/hvu/abcdefghijk_000055_000155.mp4")
    assert first.label.dtype == np.float32 and first.label.shape == (sum(len(v) for v in doc.values()),)
    expected = {
        offsets["action"] + doc["action"].index("abseiling"),
        offsets["attribute"] + doc["attribute"].index("afro"),
        offsets["scene"] + doc["scene"].index("aisle"),
    }
    assert set(np.flatnonzero(first.label)) == expected
    assert np.flatnonzero(entries[1].label).tolist() == [offsets["action"] + doc["action"].index("arm_wrestling")]


def test_hvu_csv_errors_name_file_and_row(tmp_path):
    unknown = _write(tmp_path / "h.csv", "Tags,youtube_id,time_start,time_end\nabseiling|arm wrestling,x,0,1\n")
    with pytest.raises(ValueError, match=r"h\.csv:2: tag\(s\) \['arm wrestling'\] not in"):
        read_hvu_csv(unknown, tmp_path, HVU)
    no_tags = _write(tmp_path / "h.csv", "Tags,youtube_id,time_start,time_end\n,x,0,1\n")
    with pytest.raises(ValueError, match=r"h\.csv:2: no tags"):
        read_hvu_csv(no_tags, tmp_path, HVU)
    kinetics_style = _write(tmp_path / "h.csv", "label,youtube_id,time_start,time_end,split\nzumba,x,0,1,val\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['Tags'\]"):
        read_hvu_csv(kinetics_style, tmp_path, HVU)
