"""The apps form floors and imports only point down (shared/STYLE.md), checked on every run; no
two modules of one package import each other, nor a module its own package's ``__init__``.

Regression: ``stores/transfer.py`` imported ``media`` while ``media/services.py`` imported it back
(including its private ``_discard``), and ``identifiers/services.py`` imported ``media.models``.
Until issue 32 ``stores/backends/base.py`` and ``bucket.py`` imported each other, and
``sqlitestore.py`` imported ``base`` through the package whose ``__init__`` imports it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from django.conf import settings

REPO = Path(__file__).resolve().parents[1]
APPS = settings.PROJECT_APPS


def modules():
    """(dotted name, path, parsed tree) of every module of the apps, migrations aside."""
    for app in APPS:
        for path in sorted((REPO / app).rglob("*.py")):
            if "migrations" not in path.parts:
                parts = path.relative_to(REPO).with_suffix("").parts
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                yield ".".join(parts), path, ast.parse(path.read_text(), str(path))


def test_import_linter_contract_is_kept():
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def test_no_module_imports_a_private_name_of_another():
    offenders = []
    for module, _, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module != module:
                names = [alias.name for alias in node.names if alias.name.startswith("_")]
                if names and node.module.split(".")[0] in APPS:
                    offenders.append(f"{module}: from {node.module} import {', '.join(names)}")
    assert not offenders, offenders


def test_no_module_imports_through_the_init_of_its_own_package():
    """``from stores.backends import base`` inside ``stores.backends.sqlitestore`` goes through the
    package's ``__init__``, which imports ``sqlitestore``: a cycle (which import-linter's graph does
    not show). A module of a package whose ``__init__`` imports anything names the module it
    wants (``from stores.backends.base import ...``)."""
    importing = set()
    for module, path, tree in modules():
        if path.name == "__init__.py" and any(isinstance(n, ast.Import | ast.ImportFrom) for n in tree.body):
            importing.add(module)
    offenders = []
    for module, _, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{module}: a relative import (the project imports absolutely)"
                targets = {node.module}
            elif isinstance(node, ast.Import):
                targets = {alias.name for alias in node.names}
            else:
                continue
            for target in targets & importing:
                if module.startswith(target + "."):
                    offenders.append(f"{module}: imports from {target}")
    assert not offenders, offenders
