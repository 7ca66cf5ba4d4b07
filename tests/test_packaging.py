"""What ``pip install .`` gets: loose dependencies, each one used, exact pins in make's.

Requirements are lower bounds, except torch: a range lets pip take PyPI's newest torch, a 5.8 GB
CUDA build, so it is pinned to the version whose CPU wheel the README installs first. The
versions tested together live in constraints.txt, which the Makefile passes to pip
(docs/decisions/090-install-like-a-python-package.md).
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib

from packaging.requirements import Requirement

from .conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SOURCES = [*(REPO / "src").rglob("*.py")]
# Used without an import of its own name: each with the reason.
NOT_IMPORTED = {
    "lxml": "BeautifulSoup's parser, chosen by name in ingest/load.py",
}


def _requirements(*extras: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    rows = list(project["dependencies"])
    for extra in extras:
        rows += project["optional-dependencies"][extra]
    return [Requirement(row) for row in rows]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_dependencies_are_lower_bounds_but_torch_and_make_pins_torch() -> None:
    pinned = [str(r) for r in _requirements() if any(s.operator == "==" for s in r.specifier)]
    # torch is the one exact pin: a range lets pip take PyPI's newest, a 5.8 GB CUDA build (090).
    assert pinned == ["torch==2.13.0"]
    constraints = (REPO / "constraints.txt").read_text(encoding="utf-8")
    assert re.search(r"^torch==\d", constraints, re.MULTILINE)
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    definition = re.search(r"^PIP_INSTALL := (.*)$", makefile, re.MULTILINE)
    assert definition and "-c constraints.txt" in definition.group(1)
    # Every install of the project itself goes through $(PIP_INSTALL).
    installs = [line for line in makefile.splitlines() if re.search(r" -e ['.]", line)]
    assert len(installs) == 4 and all("$(PIP_INSTALL)" in line for line in installs)


def test_every_dependency_is_imported_by_the_package() -> None:
    code = "\n".join(p.read_text(encoding="utf-8") for p in SOURCES)
    by_dist: dict[str, list[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            by_dist.setdefault(_normal(dist), []).append(module)
    unused = []
    for req in _requirements():
        name = _normal(req.name)
        if name in NOT_IMPORTED:
            continue
        modules = by_dist.get(name, [])
        assert modules, f"{req.name} is not installed"
        if not any(re.search(rf"^\s*(import|from) {m}\b", code, re.MULTILINE) for m in modules):
            unused.append(req.name)
    assert unused == []


def test_llama_cpp_python_is_bounded_above_wherever_required() -> None:
    # The worker relies on 0.3's Llama internals (prefix reuse in generate(), ctx, input_ids).
    llama = [r for r in _requirements("llm", "test") if _normal(r.name) == "llama-cpp-python"]
    assert len(llama) == 2
    for req in llama:
        assert "0.3.36" in req.specifier and "0.4" not in req.specifier
