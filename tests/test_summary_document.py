"""The typed ``summary.json``: exact round trips on a real run, README's schema block = the keys produced,
provenance (badges, the fold grouping's name) recorded in the document."""

from __future__ import annotations

import json
import re
from dataclasses import fields, replace
from pathlib import Path

import pytest

from conftest import FIXTURES
from condsel.cli import main
from condsel.datasets.ucf101 import load_ucf101_split1
from condsel.errors import CondselError
from condsel.report.html import render_report
from condsel.sources import source_provenance
from condsel.selection.evaluation.document import Curves, Provenance, SummaryDocument, load_summary

pytestmark = pytest.mark.usefixtures("one_torch_thread")

README = Path(__file__).resolve().parents[1] / "README.md"
SCORES = FIXTURES / "ucf101_scores_subset"
FILES = {"mv": "ucf101_coviar__ucf101_mv__split1__mv_score_model_best.npz",
         "iframe": "ucf101_coviar__ucf101_iframe__split1__iframe_score_model_best.npz"}


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    """``condsel table`` on two real UCF101 score files (202 videos): the summary.json as written, and its path."""
    out = tmp_path_factory.mktemp("run") / "out"
    argv = ["table"] + [a for m, f in FILES.items() for a in ("--scores", f"{m}={SCORES / f}")]
    argv += ["--policies", "selector", "--folds", "3", "--bootstrap", "5", "--out", str(out)]
    assert main(argv) == 0
    path = out / "summary.json"
    return json.loads(path.read_text()), path


def test_round_trips_are_exact_on_a_real_summary(produced):
    data, path = produced
    doc = load_summary(path)
    assert doc.to_json() == data
    assert SummaryDocument.from_json(doc.to_json()) == doc
    assert doc.headline.best_accuracy == data["summary"]["best_top1"]  # read by attribute, spelled after the metric
    assert doc.headline.accuracy_gain_at_best_gflops == data["summary"]["top1_gain_at_best_gflops"]
    assert doc.curves.selector == data["curves"]["selector"] and doc.static == data["static"]


# --- README's schema block -------------------------------------------------------------------------

_TOKEN = re.compile(r'\s+|#[^\n]*|"(?P<key>[^"]*)"|(?P<name>[A-Za-z_]\w*)|(?P<dots>\.\.\.)|(?P<punct>[{}\[\]:,])')


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m, f"README schema block: cannot read {text[pos:pos + 30]!r}"
        pos = m.end()
        if m["key"] is not None:
            out.append(m["key"])
        elif m["name"]:
            out.append("*" if m["name"].isupper() else "<leaf>")  # NAME/FIGURE are any key; `why`, `fraction` a value
        elif m["dots"] or m["punct"]:
            out.append(m["dots"] or m["punct"])
    return out


def _parse(tokens: list[str]):
    """Schema tree: dict key -> subtree (None for a leaf), ``[element]`` for a list."""
    tok = tokens.pop(0)
    if tok == "{":
        tree = {}
        while (key := tokens.pop(0)) != "}":
            if key == ",":
                continue
            tree[key] = _parse(tokens) if tokens[0] == ":" and tokens.pop(0) else None
        return tree
    if tok == "[":
        items = []
        while (nxt := tokens[0]) != "]":
            if nxt in (",", "..."):
                tokens.pop(0)
            else:
                items.append(_parse(tokens))
        tokens.pop(0)
        return [items[0] if items else None]
    return None  # a leaf value


def readme_schema() -> dict:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"`DIR/summary\.json`.*?```\n(.*?)```", text, re.S)
    assert block, "README has no summary.json schema block"
    return _parse(_tokens(block.group(1)))


def _compare(value, schema, path: str, undocumented: list, unproduced: list) -> None:
    if schema is None:
        return
    if isinstance(schema, list):
        assert isinstance(value, list), path
        for item in value:
            _compare(item, schema[0], path + "[]", undocumented, unproduced)
        return
    assert isinstance(value, dict), path
    for key, sub in value.items():
        if key in schema or "*" in schema:
            _compare(sub, schema[key] if key in schema else schema["*"], f"{path}.{key}", undocumented, unproduced)
        else:
            undocumented.append(f"{path}.{key}")
    unproduced += [f"{path}.{key}" for key in schema if key != "*" and key not in value]


def test_readme_schema_lists_exactly_the_keys_produced(produced):
    data, _ = produced
    schema = readme_schema()
    undocumented, unproduced = [], []
    _compare(data, schema, "summary.json", undocumented, unproduced)
    assert undocumented == []
    # the demo's synthetic part only; warnings only when a budget lies outside the settings' costs
    assert sorted(unproduced) == ["summary.json.latency", "summary.json.synthetic", "summary.json.warnings"]
    # and the dataclasses hold the same keys, nested sections included
    assert set(schema) == SummaryDocument.json_keys()
    assert set(schema["curves"]) == {f.name for f in fields(Curves)}
    assert set(schema["provenance"]) == {f.name for f in fields(Provenance)}
    assert set(schema["summary"]) == set(load_summary(produced[1]).headline.to_json("top1"))


def test_schema_parser_catches_a_missing_key():
    """The comparison above can fail: drop one documented key and it is reported."""
    schema = readme_schema()
    del schema["curves"]["hull"]
    undocumented = []
    _compare({"curves": {"hull": [{"gflops": 1.0}]}}, schema, "s", undocumented, [])
    assert undocumented == ["s.curves.hull"]


# --- strictness -------------------------------------------------------------------------------------

def test_unknown_or_missing_keys_are_errors_naming_them(produced, tmp_path):
    data, _ = produced
    with pytest.raises(CondselError, match=r"unknown keys \['extra'\]"):
        SummaryDocument.from_json({**data, "extra": 1})
    broken = {k: v for k, v in data.items() if k != "pool"}
    (tmp_path / "summary.json").write_text(json.dumps(broken))
    with pytest.raises(CondselError, match=r"summary\.json: missing keys \['pool'\]"):
        load_summary(tmp_path / "summary.json")
    with pytest.raises(CondselError, match=r"summary: missing keys \['best_top1'\]"):
        SummaryDocument.from_json({**data, "summary": {k: v for k, v in data["summary"].items() if k != "best_top1"}})
    with pytest.raises(CondselError, match="provenance.data"):
        Provenance("measured", [])


# --- provenance ---------------------------------------------------------------------------------------

def test_provenance_names_the_files_and_the_grouping(produced):
    data, _ = produced
    prov = data["provenance"]
    assert prov["data"] == "user"  # score files: the user's, named in sources; condsel makes no claim about them
    assert prov["sources"] == [f"{m}={SCORES / f}" for m, f in FILES.items()]
    assert prov["groups"] == "UCF101 gXX" and data["protocol"]["grouped_by"] == "group (UCF101 gXX)"
    assert data["cost_derivation"][0].startswith("UCF101 models")
    bundled = source_provenance("ucf101-split1", load_ucf101_split1())
    assert bundled["data"] == "real" and bundled["groups"] == "UCF101 gXX"


def test_report_badge_reads_the_provenance_not_the_model_names(produced, tmp_path):
    data, _ = produced
    doc = SummaryDocument.from_json(data)
    for part, provenance in (("unknown", doc.provenance), ("real", replace(doc.provenance, data="real")),
                             ("synthetic", replace(doc.provenance, data="synthetic"))):
        (tmp_path / part).mkdir()
        (tmp_path / part / "summary.json").write_text(json.dumps(replace(doc, provenance=provenance).to_json()))
    page = render_report(tmp_path)
    heads = dict(re.findall(r'<section id="(\w+)"><h2>(.*?)</h2>', page))
    assert "badge" not in heads["unknown"]  # a pool of UCF101 model names alone earns no badge
    assert "REAL published scores" in heads["real"] and "SYNTHETIC" in heads["synthetic"]


def test_a_hold_out_run_is_a_document_without_the_policy_sections():
    """The synthetic demo's producer: ``evaluate_holdout`` sections plus synthetic provenance (no fold grouping)."""
    from conftest import ucf101_slice
    from condsel.selection.evaluation.document import build_document
    from condsel.selection.evaluation.evaluate import SelectionConfig, evaluate_holdout
    from condsel.selection.method.policies import SelectorPolicy

    table = ucf101_slice(0, 400).select_models(["mv", "iframe"])
    half = table.num_samples // 2
    sections, _ = evaluate_holdout(SelectorPolicy(backbone="mv"), table.subset(slice(0, half)), table.subset(slice(half, None)),
                                   SelectionConfig(bootstrap=0, random_seeds=2, thresholds=101))
    doc = build_document(sections, Provenance("synthetic", ["val.npz", "test.npz"]), ["mv: 44.36"])
    assert doc.policies is None and doc.recommended is None and "grouped_by" not in doc.protocol
    data = doc.to_json()
    assert "policies" not in data and data["provenance"]["data"] == "synthetic"
    assert SummaryDocument.from_json(data) == doc


def test_a_multilabel_run_spells_the_headline_after_map():
    from test_selection_multilabel import _table
    from condsel.selection.evaluation.comparison import cross_validate
    from condsel.selection.evaluation.evaluate import SelectionConfig
    from condsel.selection.method.policies import SelectorPolicy

    data = cross_validate(SelectorPolicy(backbone="cheap"), _table(300), SelectionConfig(folds=3, bootstrap=0, random_seeds=2, thresholds=51))
    doc = SummaryDocument.from_json(data)
    assert doc.metric == "map" and doc.headline.best_accuracy == data["summary"]["best_map"]
    assert doc.headline.accuracy_gain_at_best_gflops == data["summary"]["map_gain_at_best_gflops"]
    assert doc.to_json() == data
