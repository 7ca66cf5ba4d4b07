"""The house rules a newcomer relies on, checked: a long module says why it is long, and the
research and benchmark scripts use only public API (docs/decisions/README.md; issue 21)."""

from __future__ import annotations

import ast

import pytest

from .conftest import REPO

LONG = 500  # lines: a module past this opens with "# Over 500 lines: <why>"
SCRIPTS = sorted(p for root in ("research", "benchmarks") for p in (REPO / root).rglob("*.py"))


def _modules() -> list[str]:
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "src" / "policy_qa").rglob("*.py"))


@pytest.mark.parametrize("name", _modules())
def test_a_long_module_says_why_on_its_first_line(name: str) -> None:
    lines = (REPO / name).read_text(encoding="utf-8").splitlines()
    if len(lines) > LONG:
        assert lines[0].startswith("# Over 500 lines: "), f"{name}: {len(lines)} lines, no reason"


def test_research_and_benchmarks_use_only_public_api() -> None:
    private = []
    for path in SCRIPTS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                owner = node.value
                if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                    private.append(f"{path.relative_to(REPO)}:{node.lineno} {ast.unparse(node)}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("policy_qa"):
                names = [a.name for a in node.names if _private(a.name)]
                private += [f"{path.relative_to(REPO)}:{node.lineno} import {n}" for n in names]
    assert SCRIPTS and not private, private


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")
