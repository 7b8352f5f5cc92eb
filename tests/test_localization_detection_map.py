"""Detection mAP: a hand-computed case, and agreement with a plain per-detection
loop written from the ActivityNet rules (condsel.localization.reference, shared
with benchmarks/detection_map_speed.py), on detections generated over the real
THUMOS'14 test ground truth (the test videos of the subset in tests/data)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import FIXTURES

from condsel.cli import main
from condsel.datasets.thumos import (
    GroundTruth,
    VideoAnnotation,
    load_ambiguous,
    load_wtalc,
)
from condsel.localization.detection_map import (
    detection_map,
    drop_ambiguous,
    parse_results,
    parse_tiou,
    results_document,
    segment_tiou,
)
from condsel.localization.reference import detections_from_rows, generated_detections, reference_map

WTALC = FIXTURES / "thumos14" / "wtalc_subset"


def test_hand_computed_case():
    gt = GroundTruth(("a", "b"), {
        "v1": VideoAnnotation("test", np.array([[0.0, 10.0], [20.0, 30.0]]), ("a", "a")),
        "v2": VideoAnnotation("test", np.array([[0.0, 10.0]]), ("b",)),
    })
    dets = detections_from_rows([
        ("v1", "a", 0.0, 10.0, 0.9),   # tIoU 1 with GT 0 -> TP
        ("v1", "a", 0.0, 5.0, 0.8),    # GT 0 taken, tIoU 0 with GT 1 -> FP
        ("v1", "a", 22.0, 30.0, 0.7),  # tIoU 0.8 with GT 1 -> TP at 0.5, FP at 0.9
        ("v2", "a", 0.0, 10.0, 0.95),  # no GT of class a in v2 -> FP
    ])
    # class a at 0.5: hits F,T,F,T over 2 GT -> precisions 0, 1/2, 1/3, 2/4 -> AP = 0.5*0.5 + 0.5*0.5 = 0.5
    # class a at 0.9: hits F,T,F,F -> AP = 0.5 * 0.5 = 0.25; class b has no detections -> AP 0
    result = detection_map(gt, dets, np.array([0.5, 0.9]))
    np.testing.assert_allclose(result.ap, [[0.5, 0.25], [0.0, 0.0]])
    np.testing.assert_allclose(result.map, [25.0, 12.5])


def test_equals_loop_reference_on_real_thumos_test_gt():
    gt = load_wtalc(WTALC).subset("test")
    rows = generated_detections(gt, n_per_segment=2, seed=0)
    thresholds = parse_tiou("0.1:0.7:0.1")
    ours = detection_map(gt, detections_from_rows(rows), thresholds)
    np.testing.assert_allclose(ours.map, reference_map(gt, rows, thresholds), atol=1e-6)
    assert 20 < ours.average_map < 95  # the generated detections are neither useless nor perfect


def test_perfect_detections_score_100():
    gt = load_wtalc(WTALC).subset("test")
    rows = [(n, label, s, e, 1.0) for n, v in gt.videos.items() for (s, e), label in zip(v.segments.tolist(), v.labels)]
    np.testing.assert_allclose(detection_map(gt, detections_from_rows(rows), np.array([0.1, 0.7])).map, [100.0, 100.0])


def test_ambiguous_filter_drops_overlaps_only():
    spans = load_ambiguous(WTALC / "Ambiguous_test.txt")
    assert sum(len(v) for v in spans.values()) == 24
    first_video, first = next(iter(spans.items()))
    s, e = first[0]
    dets = detections_from_rows([
        (first_video, "x", s - 5, s + 0.1, 1.0),  # overlaps
        (first_video, "x", s - 5, s, 1.0),        # touches only: kept
        ("other", "x", s, e, 1.0),                # other video: kept
    ])
    kept = drop_ambiguous(dets, spans)
    assert [tuple(x) for x in kept.segments] == [(s - 5, s), (s, e)]


def test_results_parsing_accepts_strings_and_rejects_bad_rows():
    dets = parse_results({"results": {"v": [{"label": "a", "segment": ["1.5", 3], "score": "0.5"}]}}, "x.json")
    assert dets.segments.tolist() == [[1.5, 3.0]] and dets.scores.tolist() == [0.5]
    with pytest.raises(ValueError, match="v detection 0"):
        parse_results({"results": {"v": [{"label": "a", "segment": ["one", 3], "score": 1}]}}, "x.json")
    with pytest.raises(ValueError, match="tIoU"):
        parse_tiou("0.1:0.7")


def test_cli_json_and_unknown_label(tmp_path, capsys):
    gt = load_wtalc(WTALC).subset("test")
    rows = generated_detections(gt, n_per_segment=1, seed=1)
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(results_document(detections_from_rows(rows))))
    assert main(["detection-map", "--gt", str(WTALC), "--pred", str(pred), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(out["map"], reference_map(gt, rows, parse_tiou("0.1:0.7:0.1")), atol=1e-6)
    assert out["average_map"] == pytest.approx(np.mean(out["map"]))
    rows[0] = (rows[0][0], "NotAClass", *rows[0][2:])
    pred.write_text(json.dumps(results_document(detections_from_rows(rows))))
    assert main(["detection-map", "--gt", str(WTALC), "--pred", str(pred)]) == 2
    assert "NotAClass" in capsys.readouterr().err


def test_cli_does_not_import_torch(tmp_path):
    """Scoring a results file needs numpy only; torch alone took ~1.4 s of a 2.6 s run."""
    gt = load_wtalc(WTALC).subset("test")
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(results_document(detections_from_rows(generated_detections(gt, 1, seed=2)))))
    code = ("import sys; from condsel.cli import main; "
            f"code = main(['detection-map', '--gt', {str(WTALC)!r}, '--pred', {str(pred)!r}]); "
            "print(code, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-2:] == ["0", "False"]


@pytest.mark.parametrize("first, second, expected_map", [((0.0, 10.0), (10.0, 20.0), 50.0), ((10.0, 20.0), (0.0, 10.0), 100.0)])
def test_an_exact_tiou_tie_goes_to_the_segment_listed_first(tmp_path, capsys, first, second, expected_map):
    """docs/localization.md: on an exact tie the GT segment listed first in the GT file is taken.

    [5, 15] overlaps [0, 10] and [10, 20] by 5 s of 15: tIoU 1/3 with both. Then [0, 9] (tIoU 0.9 with
    [0, 10], 0 with [10, 20]) is a hit only if the tie went to [10, 20]: at tIoU 0.3 the hits are
    T, F (AP = 1/2 x 1 = 0.5) when [0, 10] is listed first, T, T (AP = 1) when [10, 20] is.
    """
    tie = segment_tiou(np.array([5.0, 15.0]), np.array([[0.0, 10.0], [10.0, 20.0]]))
    assert tie[0] == tie[1] == pytest.approx(1 / 3)  # exactly equal in floating point, not just close
    gt = tmp_path / "gt.json"
    annotations = [{"segment": list(first), "label": "a"}, {"segment": list(second), "label": "a"}]
    gt.write_text(json.dumps({"database": {"v1": {"subset": "test", "annotations": annotations}}}))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(results_document(detections_from_rows([("v1", "a", 5.0, 15.0, 0.9), ("v1", "a", 0.0, 9.0, 0.8)]))))
    assert main(["detection-map", "--gt", str(gt), "--pred", str(pred), "--tiou", "0.3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["map"] == [pytest.approx(expected_map)]
