"""The `lam-ros` entry point: every subcommand is reachable and documented; bad input is one clear line."""

import subprocess
import sys

import pytest

from lam_ros import cli


def test_every_command_has_help_and_a_description(capsys):
    parser = cli.build_parser()
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert f"lam-ros {name}" in out and "options:" in out


def test_top_level_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "lam_ros.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for name in cli.COMMANDS:
        assert name in out


def test_bad_input_is_one_line_without_traceback(tmp_path, capsys):
    code = cli.main(["recover", str(tmp_path / "no_such_dataset")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lam-ros recover: error:") and "Traceback" not in err


@pytest.mark.parametrize("rank,expected", [(None, True), ("0", True), ("1", False)])
def test_only_rank_zero_is_the_main_process(monkeypatch, rank, expected):
    if rank is None:
        monkeypatch.delenv("RANK", raising=False)
    else:
        monkeypatch.setenv("RANK", rank)
    assert cli.is_main_process() is expected
