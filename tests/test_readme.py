"""The README runs as written: every `chimera ...` and `dvc ...` command line in it parses."""

import re
import shlex

import pytest
import typer.main

from chimera.cli import app
from conftest import ROOT

PLACEHOLDER = {"IMAGE": "frame.png", "DIR": "frames", "URL": "https://example.com/v", "FILE": "out.txt",
               "S": "1.0", "MANIFEST...": "m.parquet", "MANIFEST": "m.parquet", "ID": "x", "N": "2"}


def readme_commands() -> list[str]:
    """Command lines from code blocks and from `inline code` in tables and prose."""
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [line.split("#")[0].strip() for line in joined.splitlines()]
    lines += re.findall(r"`((?:chimera|dvc) [^`]+)`", text)
    return sorted({line for line in lines if re.match(r"(chimera|dvc) ", line)})


def concrete(line: str) -> list[str]:
    """'chimera label --input DIR [--batch]' -> argv with placeholders filled and options kept. Quoted
    arguments (a regex for `dvc exp show --keep`) pass through untouched."""
    argv = []
    for word in shlex.split(line):
        if word.startswith("[") or word.endswith("]"):
            word = word.strip("[]")  # an optional part: kept, to check it parses
        if re.fullmatch(r"[\w-]+(\|[\w-]+)+", word):
            word = word.split("|")[0]  # local|openai|claude -> local
        argv.append(PLACEHOLDER.get(word, word))
    return argv


COMMANDS = readme_commands()


def test_the_readme_has_commands():
    assert any(c.startswith("chimera ") for c in COMMANDS) and any(c.startswith("dvc ") for c in COMMANDS)


@pytest.mark.parametrize("line", [c for c in COMMANDS if c.startswith("chimera ")])
def test_chimera_command_parses(line):
    command = typer.main.get_command(app)
    argv = concrete(line)[1:]
    if argv[0] == "--help":
        return
    name = argv[0]
    assert name in command.commands, f"no command {name!r}"
    if "--help" not in argv:
        command.commands[name].make_context(name, argv[1:])  # raises on unknown options or missing arguments


@pytest.mark.parametrize("line", [c for c in COMMANDS if c.startswith("dvc ")])
def test_dvc_command_parses(line):
    from dvc.cli import parse_args

    parse_args(concrete(line)[1:])  # argparse: exits (SystemExit) on a bad command line
