"""One error policy for the command line: bad input exits 2 with one line naming the file, only
``cli.main`` reports it, exit 1 means "ran, but some inputs failed", and ``--help`` says so."""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES

from condsel.cli import main
from condsel.errors import CondselError
from condsel.models.checkpoints import CheckpointError
from condsel.video.decode import VideoDecodeError

COMMANDS = Path(__file__).resolve().parents[1] / "src" / "condsel" / "commands"
UCF101_MV = FIXTURES / "ucf101_scores_subset" / "ucf101_coviar__ucf101_mv__split1__mv_score_model_best.npz"


def _good(path: Path) -> Path:
    np.savez(path, names=np.array(["v1", "v2", "v3"]), labels=np.array([0, 1, 1]), logits=np.eye(3, 2, dtype=np.float32))
    return path


def _flip_member_bytes(src: Path, dst: Path) -> Path:
    """A zip whose central directory is intact but whose member data is damaged (the CRC check fails)."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as archive:
        info = archive.infolist()[-1]
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 8
    data[start : start + 16] = bytes(b ^ 0xFF for b in data[start : start + 16])
    dst.write_bytes(bytes(data))
    return dst


CORRUPTIONS = {
    "random bytes": lambda good, bad: bad.write_bytes(np.random.default_rng(0).bytes(4000)),
    "a truncated archive": lambda good, bad: bad.write_bytes(good.read_bytes()[:300]),
    "damaged member data": lambda good, bad: _flip_member_bytes(good, bad),
    "a pickle": lambda good, bad: np.save(bad.with_suffix(".npy"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
    or bad.with_suffix(".npy").rename(bad),
    "damaged published scores": lambda good, bad: _flip_member_bytes(UCF101_MV, bad),
}


def _err(capsys) -> str:
    return capsys.readouterr().err


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_corrupt_score_file_exits_2_naming_it(tmp_path, capsys, corruption):
    good = _good(tmp_path / "GOOD.npz")
    bad = tmp_path / "CORRUPT.npz"
    CORRUPTIONS[corruption](good, bad)
    argv = ["table", "--scores", f"a={good}", "--scores", f"b={bad}", "--backbone", "a", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = _err(capsys)
    assert err.startswith("condsel table: error: ") and "CORRUPT.npz" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_model_named_twice_is_a_usage_error(tmp_path, capsys):
    good = _good(tmp_path / "GOOD.npz")
    assert main(["table", "--scores", f"a={good}", "--scores", f"a={good}", "--backbone", "a", "--out", str(tmp_path / "out")]) == 2
    assert "condsel table: error: a model name is given twice in --scores" in _err(capsys)


def _garbage(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x01 not what this file should be {[\n" * 20)
    return path


# command line with {bad} where a file goes; every one must exit 2 and name the file
BAD_FILE_COMMANDS = {
    "table --table": (["table", "--table", "{bad}", "--backbone", "mv", "--out", "{out}"], "BAD.npz"),
    "table --costs": (["table", "--bundled", "ucf101-split1", "--backbone", "mv", "--costs", "{bad}", "--out", "{out}"], "BAD.toml"),
    "analyze --table": (["analyze", "alpha-sweep", "--table", "{bad}", "--out", "{out}"], "BAD.npz"),
    "detection-map --gt": (["detection-map", "--gt", "{bad}", "--pred", "{bad}"], "BAD.json"),
    "detection-map --pred": (["detection-map", "--gt", str(FIXTURES / "thumos14" / "wtalc_subset"), "--pred", "{bad}"], "BAD.json"),
    "thumos-gt --wtalc": (["thumos-gt", "--wtalc", "{dir}", "--out", "{out}/gt.json"], "videoname.npy"),
    "localize --gt": (["localize", "--features", "{out}", "--annotations", "thumos14", "--gt", "{bad}", "--out", "{out}"], "BAD.json"),
    "zoo --pool": (["zoo", "--pool", "{bad}"], "BAD.toml"),
    "predict --run": (["predict", "--run", "{dir}", str(FIXTURES / "videos" / "arm_wrestling_cut.mp4")], "{dir}"),
    "inspect": (["inspect", "{dir}"], "{dir}"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILE_COMMANDS))
def test_every_file_reading_error_names_the_file(tmp_path, capsys, case):
    argv, named = BAD_FILE_COMMANDS[case]
    bad_dir = tmp_path / "BAD_DIR"
    for name in ("videoname", "subset", "classlist", "labels", "segments", "duration"):
        _garbage(bad_dir / f"{name}.npy")
    _garbage(bad_dir / "store.json")
    _garbage(bad_dir / "run.json")
    bad = _garbage(tmp_path / ("BAD" + Path(named).suffix if named.startswith("BAD") else "BAD.bin"))
    fill = {"{bad}": str(bad), "{dir}": str(bad_dir), "{out}": str(tmp_path / "out")}
    argv = [fill.get(a, a.replace("{out}", str(tmp_path / "out"))) for a in argv]
    assert main(argv) == 2
    err = _err(capsys)
    command = argv[0]
    assert err.startswith(f"condsel {command}: error: ")
    assert fill.get(named, named) in err, err
    assert "Traceback" not in err


def _help(capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def test_help_documents_the_exit_codes(capsys):
    text = _help(capsys)
    assert "exit status:" in text
    for line in ("0  done", "1  ran, but some inputs failed", "2  bad usage or bad input"):
        assert line in text


def test_version_prints_it_and_no_command_prints_the_help(capsys):
    import condsel

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"condsel {condsel.__version__}\n"
    assert main([]) == 0
    assert capsys.readouterr().out == _help(capsys)


def test_project_errors_are_value_errors():
    for error in (VideoDecodeError("x.mp4", "empty file"), CheckpointError("x.pt: not found")):
        assert isinstance(error, CondselError) and isinstance(error, ValueError)


def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _command_modules() -> list[Path]:
    modules = sorted(p for p in COMMANDS.glob("*.py") if p.name != "__init__.py")
    assert len(modules) >= 10
    return modules


def test_no_command_module_imports_another():
    offenders = []
    for path in _command_modules():
        for node in ast.walk(_parsed(path)):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n == "condsel.commands" or n.startswith("condsel.commands.") for n in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_commands_neither_report_value_errors_nor_exit_themselves():
    """A command may re-raise a ValueError with the file's name added, never swallow it into an exit code."""
    offenders = []
    for path in _command_modules():
        for node in ast.walk(_parsed(path)):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = {n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)}
                reraises = any(isinstance(n, ast.Raise) for n in ast.walk(node))
                if caught & {"ValueError", "CondselError"} and not reraises:
                    offenders.append(f"{path.name}:{node.lineno} catches {sorted(caught)}")
            if isinstance(node, ast.Raise) and node.exc is not None:
                raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(raised, ast.Name) and raised.id == "SystemExit":
                    offenders.append(f"{path.name}:{node.lineno} raises SystemExit")
    assert offenders == []
