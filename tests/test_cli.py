"""The CLI edge: exit codes, one-line errors, JSON output, and no torch for split/--help."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from llasa_cli import errors
from llasa_cli.cli.app import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_texts" / "the_lighthouse.txt"


def run_cli(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    code = "import sys; from llasa_cli.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def readme_exit_codes() -> dict[int, str]:
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- exit-codes")[1].split("\n\n")[0]
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| (.+) \|$", table, re.M)}


def all_error_classes() -> list[type[errors.LlasaError]]:
    """Every domain error class."""
    seen: list[type[errors.LlasaError]] = []
    stack: list[type[errors.LlasaError]] = [errors.LlasaError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


def test_every_error_exit_code_is_documented_and_distinct_per_input_error():
    documented = readme_exit_codes()
    for cls in all_error_classes():
        assert cls.exit_code in documented, f"{cls.__name__} exit code {cls.exit_code} missing from README"
    input_errors = [
        errors.InputNotFoundError,
        errors.InputIsDirectoryError,
        errors.InputDecodeError,
        errors.InputBinaryError,
        errors.InputEmptyError,
    ]
    assert len({cls.exit_code for cls in input_errors}) == len(input_errors)


@pytest.mark.parametrize(
    ("make_input", "code", "fragment"),
    [
        (lambda d: str(d / "missing.txt"), 10, "missing.txt"),
        (lambda d: str(d), 11, "directory"),
        (lambda d: _write(d / "latin.txt", "café au lait".encode("latin-1")), 12, "--encoding"),
        (lambda d: _write(d / "bin.txt", b"abc\x00\x01\x02def"), 13, "bin.txt"),
        (lambda d: _write(d / "blank.txt", b"  \n\t\n"), 14, "blank.txt"),
    ],
)
def test_bad_input_gives_one_line_and_its_exit_code(tmp_path, make_input, code, fragment):
    result = run_cli(["split", make_input(tmp_path)])
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llasa: error:"), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_bad_option_value_is_a_usage_error(capsys):
    assert main(["split", str(SAMPLE), "--lang", "fr"]) == errors.InvalidOptionError.exit_code
    assert "--lang" in capsys.readouterr().err


def test_split_json_from_stdin_has_documented_keys():
    result = run_cli(["split", "-", "--json"], stdin=SAMPLE.read_bytes())
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows
    for row in rows:
        assert isinstance(row["chapter"], int) and isinstance(row["segment"], int)
        assert {"chapter_title", "text", "est_seconds", "pause_after"} <= row.keys()
    assert len({row["chapter"] for row in rows}) == 4  # the book title before chapter one is its own chapter


def test_split_shows_a_table_of_chapters():
    result = run_cli(["split", str(SAMPLE)])
    assert result.returncode == 0, result.stderr
    assert "01-" in result.stdout and "04-" in result.stdout


@pytest.mark.parametrize("args", [["--help"], ["split", str(SAMPLE)], ["split", str(SAMPLE), "--json"]])
def test_help_and_split_never_import_torch(args):
    """Nor scipy (pyloudnorm's), which alone takes most of a second to import."""
    code = (
        "import sys; from llasa_cli.cli import main; rc = main(sys.argv[1:]);"
        "bad = [m for m in ('torch', 'transformers', 'whisper', 'scipy') if m in sys.modules];"
        "print('HEAVY', bad, file=sys.stderr); sys.exit(rc or (3 if bad else 0))"
    )
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr


def test_synth_needs_a_file_or_text(capsys):
    assert main(["synth"]) == errors.InvalidOptionError.exit_code
    assert "--text" in capsys.readouterr().err


def test_synth_dry_run_prints_the_plan_without_models(capsys):
    assert main(["synth", str(SAMPLE), "--dry-run", "--model", "/nonexistent"]) == 0
    assert "04-" in capsys.readouterr().out


def installed_llasa() -> str:
    """The `llasa` entry point pip installed beside this Python."""
    script = Path(sys.executable).with_name("llasa")
    if not script.exists():
        pytest.skip("the llasa entry point is not installed next to this Python")
    return str(script)


def test_version_through_the_installed_command():
    from llasa_cli import __version__

    result = subprocess.run([installed_llasa(), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"llasa-cli {__version__}"


def test_synth_help_groups_its_options_in_panels():
    result = subprocess.run(
        [installed_llasa(), "synth", "--help"], capture_output=True, text=True, timeout=60, env={"COLUMNS": "200"}
    )
    assert result.returncode == 0, result.stderr
    panels = re.findall(r"^╭─ (.+?) ─", result.stdout, re.M)
    groups = ["Input and text", "Models and device", "Sampling", "Search", "Verification", "Audio output"]
    assert [p for p in panels if p not in ("Arguments", "Options")] == [*groups, "Job control"]
    for flag in ("--beam", "--max-wer", "--loudness", "--max-minutes", "--temperature", "--device", "--lexicon"):
        assert flag in result.stdout


def test_every_option_of_every_command_has_help_text():
    import typer.main

    from llasa_cli.cli.app import app

    def commands(group, path=()):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from commands(command, (*path, name))
            else:
                yield (*path, name), command

    group = typer.main.get_command(app)
    missing = [
        f"llasa {' '.join(path)} {param.opts[0]}"
        for path, command in commands(group)
        for param in command.params
        if param.param_type_name == "option" and param.name != "help" and not (param.help or "").strip()
    ]
    assert missing == []
    listed = {path[-1] for path, _ in commands(group)}
    assert {"split", "synth", "verify", "status", "stitch", "redo", "report", "check"} <= listed
    assert {"add", "list", "remove"} <= listed  # llasa voice ...


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["synth", "book.txt", "--beem", "5"], ["--beem", "--beam"]),
        (["sytnh"], ["sytnh", "synth"]),
        (["status"], ["outdir"]),
        (["synth", "book.txt", "--temperature", "abc"], ["--temperature"]),
        ([], ["no command given"]),
        (["voice"], ["no command given"]),
        (["split", "-x"], ["-x"]),
    ],
)
def test_a_command_line_mistake_is_one_line_and_exit_2(args, names):
    result = subprocess.run([installed_llasa(), *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == errors.InvalidOptionError.exit_code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("llasa: error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for name in names:
        assert name.lower() in lines[0].lower()


@pytest.mark.parametrize("args", [["-h"], ["--help"], ["synth", "-h"], ["voice", "add", "-h"]])
def test_short_and_long_help_print_usage_and_exit_0(args):
    result = subprocess.run([installed_llasa(), *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "Usage: llasa" in result.stdout
    assert result.stderr == ""


def test_bare_llasa_prints_the_command_list_on_stdout():
    result = subprocess.run([installed_llasa()], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "synth" in result.stdout and "Usage: llasa" in result.stdout


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--pace-factor", "0.5"), ("--min-snr", "500"), ("--max-omitted-words", "-1"), ("--max-words-after-end", "-3")],
)
def test_synth_takes_the_verify_thresholds_and_validates_them(capsys, flag, value):
    """The checks `llasa verify` tunes run inside synth too, so synth takes the same flags."""
    assert main(["synth", str(SAMPLE), "--dry-run", flag, value]) == errors.InvalidOptionError.exit_code
    assert flag in capsys.readouterr().err
