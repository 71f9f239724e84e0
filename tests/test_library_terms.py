"""The library speaks in its own terms: only the command (revnets/cli.py) names command-line flags."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "revnets"
FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")


def test_no_string_outside_the_cli_names_a_command_line_flag() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "cli.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and FLAG.search(node.value):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {FLAG.search(node.value).group()}")
    assert not found, "\n".join(found)
