"""The apps form floors and imports only point down (shared/STYLE.md), checked on every run.

Regression: ``stores/transfer.py`` imported ``media`` while ``media/services.py`` imported it back
(including its private ``_discard``), and ``identifiers/services.py`` imported ``media.models``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APPS = ["mediastore", "identifiers", "stores", "media", "content", "events", "status", "importer"]


def test_import_linter_contract_is_kept():
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_no_module_imports_a_private_name_of_another():
    offenders = []
    for app in APPS:
        for path in (REPO / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and node.module and node.module != module:
                    names = [alias.name for alias in node.names if alias.name.startswith("_")]
                    if names and node.module.split(".")[0] in APPS:
                        offenders.append(f"{module}: from {node.module} import {', '.join(names)}")
    assert not offenders, offenders
