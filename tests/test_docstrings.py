"""Every public function, class and public method of a public class has a docstring.

The rule comes from the developers' guide (issue 11, part 5): a public definition says what goes in
and out, with shapes and units, and what it raises. This test can only check that the docstring is
there; review checks what it says.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cds_service", "fhir_mappers", "cards")
# Alembic calls each revision's upgrade()/downgrade() by name; the revision's module docstring
# says what it changes.
SKIPPED = ("cds_service/storage/migrations/versions/",)


def missing_docstrings(source: str, filename: str = "<source>") -> list[str]:
    """``file:line name`` of each public definition in ``source`` without a docstring.

    Public: a module-level function or class, or a method of a public class, whose name does not
    start with an underscore (so ``__init__`` and other dunders are left out).
    """
    missing: list[str] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if node.name.startswith("_"):
                continue
            if ast.get_docstring(node) is None:
                missing.append(f"{filename}:{node.lineno} {prefix}{node.name}")
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")

    visit(ast.parse(source, filename).body, "")
    return missing


def _package_files() -> list[Path]:
    files = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith(SKIPPED):
                files.append(path)
    return files


def test_checker_finds_undocumented_public_definitions() -> None:
    source = '''
def documented():
    """Yes."""

def undocumented():
    pass

def _private():
    pass

class Public:
    """Yes."""

    def __init__(self):
        pass

    def method(self):
        pass

    @property
    def value(self):
        """Yes."""

    def _helper(self):
        pass

class _Private:
    def method(self):
        pass

class Bare:
    async def run(self):
        pass
'''
    assert missing_docstrings(source, "m.py") == [
        "m.py:5 undocumented",
        "m.py:17 Public.method",
        "m.py:31 Bare",
        "m.py:32 Bare.run",
    ]


def test_checker_walks_every_package() -> None:
    files = {path.relative_to(ROOT).as_posix() for path in _package_files()}
    assert "cds_service/web/hooks.py" in files
    assert "fhir_mappers/mapper.py" in files
    assert "cards/builder.py" in files
    assert not any(name.startswith(SKIPPED) for name in files)


def test_every_public_definition_has_a_docstring() -> None:
    missing = []
    for path in _package_files():
        relative = path.relative_to(ROOT).as_posix()
        missing += missing_docstrings(path.read_text(encoding="utf-8"), relative)
    assert not missing, f"{len(missing)} public definition(s) without a docstring:\n" + "\n".join(
        missing
    )
