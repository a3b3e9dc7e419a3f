"""The README's console examples, run as written against vae-serve on the bundled models: each
`$ curl` line's output must be the lines the README shows under it (request ids aside)."""

import re
import subprocess

import pytest

from harness.server import running_server
from tests.conftest import REPO

README = REPO / "README.md"
REQUEST_ID = re.compile(r'"request_id":"[0-9a-f]{32}"')


def console_examples() -> list[tuple[int, str, list[str]]]:
    """(line number, command, expected output lines) of every `$ curl` in a console block."""
    examples, block, current = [], False, None
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if line.startswith("```"):
            block = line == "```console"
            current = None
            continue
        if not block:
            continue
        if line.startswith("$ "):
            current = (number, line[2:], []) if line.startswith("$ curl") else None
            if current:
                examples.append(current)
        elif current is not None and line:
            current[2].append(line)
    return examples


def _without_ids(lines: list[str]) -> list[str]:
    return [REQUEST_ID.sub('"request_id":"..."', line) for line in lines]


@pytest.fixture(scope="module")
def server():
    with running_server(None) as server:
        yield server


def test_the_readme_has_console_examples():
    assert len(console_examples()) >= 24


@pytest.mark.parametrize("number, command, expected", console_examples(), ids=lambda value: str(value)[:40])
def test_each_console_example_answers_as_the_readme_shows(server, tmp_path, number, command, expected):
    (tmp_path / "docs").symlink_to(REPO / "docs")
    (tmp_path / "README.md").symlink_to(README)
    command = command.replace("localhost:8000", server.url.removeprefix("http://"))
    run = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    output = [line.rstrip("\r") for line in run.stdout.splitlines() if line.strip()]
    assert _without_ids(output) == _without_ids(expected), f"README line {number}: {run.stderr}"
