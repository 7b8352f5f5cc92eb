"""Every numeric flag of every command has a valid range; a value outside it exits 2 naming the flag.

One row per (command, flag, bad value). A new numeric flag without a range converter, or one missing
from ``BAD_VALUES``, fails :func:`test_every_numeric_flag_has_a_range_and_a_row`.
"""

from __future__ import annotations

import argparse

import pytest

from condsel import _argtypes
from condsel.cli import build_parser, main

# (command words, flag, a value outside its range)
BAD_VALUES = [
    ("table", "--alpha", "-1"),
    ("table", "--temperature", "0"),
    ("table", "--folds", "1"),
    ("table", "--seed", "-1"),
    ("table", "--budget", "0"),
    ("table", "--bootstrap", "-5"),
    ("table", "--workers", "0"),
    ("fit", "--budget", "-3"),
    ("fit", "--threshold", "1.5"),
    ("fit", "--folds", "0"),
    ("fit", "--seed", "-2"),
    ("predict", "--threshold", "-0.1"),
    ("predict", "--budget", "0"),
    ("serve", "--port", "70000"),
    ("serve", "--threshold", "nan"),
    ("serve", "--budget", "inf"),
    ("serve", "--max-batch", "0"),
    ("serve", "--batch-wait-ms", "-1"),
    ("serve", "--max-upload-mb", "0"),
    ("serve", "--torch-threads", "0"),
    ("serve", "--ray-cpus", "0"),
    ("serve", "--metrics-port", "0"),
    ("serve", "--target-gflops", "0"),
    ("serve", "--target-ms", "-5"),
    ("serve", "--window", "0"),
    ("serve", "--slo-ms", "-1"),
    ("profile", "--threads", "0"),
    ("profile", "--repeats", "0"),
    ("extract", "--workers", "-1"),
    ("extract", "--per-clip", "0"),
    ("extract", "--threads", "0"),
    ("analyze alpha-sweep", "--alphas", "-0.5"),
    ("analyze alpha-sweep", "--folds", "1"),
    ("analyze alpha-sweep", "--seed", "-1"),
    ("analyze views", "--draws", "0"),
    ("analyze views", "--seed", "-1"),
    ("analyze per-class", "--alpha", "-1"),
    ("analyze per-class", "--folds", "1"),
    ("analyze per-class", "--threshold", "2"),
    ("analyze per-class", "--named", "0"),
    ("analyze per-class", "--seed", "-1"),
    ("analyze backbones", "--alpha", "-1"),
    ("analyze backbones", "--folds", "1"),
    ("analyze backbones", "--seed", "-1"),
    ("analyze latency", "--seed", "-1"),
    ("analyze diagnostics", "--alpha", "-1"),
    ("analyze diagnostics", "--folds", "1"),
    ("analyze diagnostics", "--threshold", "-1"),
    ("analyze diagnostics", "--bins", "0"),
    ("analyze diagnostics", "--seed", "-1"),
    ("analyze localization", "--betas", "1.5"),
    ("analyze localization", "--pseudo-label-betas", "-0.1"),
    ("analyze localization", "--points", "1"),
    ("analyze localization", "--random-seeds", "0"),
    ("analyze localization", "--seed", "-1"),
    ("localize", "--clip-seconds", "0"),
    ("localize", "--iterations", "0"),
    ("localize", "--lr", "-1e-4"),
    ("localize", "--beta", "1.1"),
    ("localize", "--threshold", "-0.5"),
    ("localize", "--points", "1"),
    ("localize", "--random-seeds", "0"),
    ("localize", "--seed", "-1"),
    ("demo", "--seed", "-1"),
    ("synth", "--videos", "0"),
    ("synth", "--seed", "-1"),
    ("thumos-gt", "--tolerance", "-1"),
]

# values that are no number at all, or not a finite one, fail every numeric flag the same way
NOT_NUMBERS = ["abc", "nan", "-inf", "1e999"]


def _numeric_flags(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> dict[tuple[str, str], object]:
    """(command words, flag) -> converter for every option whose value is a number, subcommands included."""
    found = {}
    for action in parser._actions:  # argparse keeps no public list of a parser's actions
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_numeric_flags(sub, (*words, name)))
        elif action.option_strings and (action.type in (int, float) or getattr(action.type, "__module__", "") == _argtypes.__name__):
            found[(" ".join(words), action.option_strings[0])] = action.type
    return found


def _exit_2(capsys, argv: list[str]) -> str:
    """The one line a usage error prints, after checking the status and that it is one line."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_every_numeric_flag_has_a_range_and_a_row():
    flags = _numeric_flags(build_parser())
    unchecked = sorted(f"{cmd} {flag}" for (cmd, flag), kind in flags.items() if kind in (int, float))
    assert unchecked == [], "use a converter from condsel._argtypes"
    assert sorted(flags) == sorted({(cmd, flag) for cmd, flag, _ in BAD_VALUES})


@pytest.mark.parametrize(("command", "flag", "bad"), BAD_VALUES, ids=[f"{c} {f} {b}" for c, f, b in BAD_VALUES])
def test_a_value_outside_the_range_exits_2_naming_the_flag(tmp_path, capsys, command, flag, bad):
    line = _exit_2(capsys, [*command.split(), f"{flag}={bad}", "--out", str(tmp_path / "out")])
    assert line.startswith(f"condsel {command}: error: argument {flag}")
    assert bad in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_a_value_that_is_not_a_finite_number_exits_2(tmp_path, capsys, text):
    line = _exit_2(capsys, ["table", "--bundled", "ucf101-split1", f"--alpha={text}", "--out", str(tmp_path / "out")])
    assert line.startswith("condsel table: error: argument --alpha: expected ")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("converter", "inside", "outside"),
    [
        (_argtypes.positive_int, ["1", "7"], ["0", "-1", "1.5"]),
        (_argtypes.nonnegative_int, ["0", "3"], ["-1", "0.5"]),
        (_argtypes.int_at_least(2), ["2", "10"], ["1", "0"]),
        (_argtypes.positive_float, ["1e-9", "3.5"], ["0", "-0.0", "-2"]),
        (_argtypes.nonnegative_float, ["0", "-0.0", "0.5"], ["-1e-12", "-3"]),
        (_argtypes.fraction, ["0", "1", "0.25"], ["1.0000001", "-0.01"]),
        (_argtypes.port, ["1", "8000", "65535"], ["0", "65536"]),
    ],
)
def test_each_range_admits_its_edges_and_nothing_beyond(converter, inside, outside):
    for text in inside:
        assert converter(text) == float(text)
    for text in outside:
        with pytest.raises(argparse.ArgumentTypeError):
            converter(text)


def test_the_issue_case_alpha_minus_one_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    line = _exit_2(capsys, ["table", "--bundled", "ucf101-split1", "--alpha", "-1", "--out", str(out)])
    assert line == "condsel table: error: argument --alpha: must be >= 0, got -1"
    assert not out.exists()
