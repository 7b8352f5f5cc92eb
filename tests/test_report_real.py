"""The report's "what is real" section is built from each run's recorded provenance (issue 27, item 2)."""

from __future__ import annotations

import html
import json
import re
import shutil

import numpy as np
import pytest

from condsel.cli import main
from condsel.report.html import render_report
from condsel.report.provenance import write_provenance

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    """`condsel table` on a user's CSV score files (two models, 200 videos, 4 classes)."""
    root = tmp_path_factory.mktemp("user")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    argv = ["table"]
    for name, noise in (("small", 2.0), ("large", 0.7)):
        z = rng.normal(size=(200, 4)) * noise
        z[np.arange(200), labels] += 2.0
        rows = [f"vid_{i:03d},{labels[i]}," + ",".join(f"{v:.5f}" for v in z[i]) for i in range(200)]
        (root / f"{name}.csv").write_text("name,label,c0,c1,c2,c3\n" + "\n".join(rows) + "\n")
        argv += ["--scores", f"{name}={root / f'{name}.csv'}"]
    (root / "costs.toml").write_text("[gflops]\nsmall = 2\nlarge = 40\n")
    out = root / "run"
    assert main([*argv, "--costs", str(root / "costs.toml"), "--backbone", "small", "--policies", "cascade", "--folds", "3",
                 "--bootstrap", "0", "--workers", "1", "--out", str(out)]) == 0
    return root, out


def _real_section(page: str) -> str:
    return html.unescape(re.search(r'<section id="real-synthetic">(.*?)</section>', page, re.S).group(1))


def test_a_users_table_records_its_files_and_the_report_says_so(user_run):
    root, out = user_run
    provenance = json.loads((out / "summary.json").read_text())["provenance"]
    assert provenance["data"] == "user"
    assert provenance["sources"] == [f"small={root / 'small.csv'}", f"large={root / 'large.csv'}"]
    section = _real_section(render_report(out))
    assert "your data: scores read from small=" in section and "large.csv" in section
    assert "UCF101" not in section and "published" not in section


def test_the_demo_wording_covers_only_the_demos_own_parts(user_run, tmp_path):
    _, out = user_run
    demo = tmp_path / "demo_out"
    shutil.copytree(out, demo / "ucf101")
    shutil.copytree(out, demo / "mine")
    (demo / "ucf101" / "provenance.json").unlink()
    write_provenance(demo, ["demo", "--out", str(demo)])
    section = _real_section(render_report(demo))
    assert "The demo's parts" in section and "published UCF101 scores" in section
    assert section.count("your data: scores read from") == 1 and "<li>mine: your data" in section
