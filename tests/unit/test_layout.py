"""The code's layout rules (docs/operations.md, "Layout"), checked on the source text:
no module edits sys.path (the project is installed), no import cycle among the project's
modules (function-level imports included), conf/ imports nothing above it, engine/ imports
no job, the models import no Spark, and no job imports another job's entry point (shared
pieces live in the engine)."""

from __future__ import annotations

import ast
from pathlib import Path

from conf.settings import REPO_ROOT

PACKAGES = ("conf", "stack", "engine", "jobs", "dims", "producers", "dashboards")


def modules() -> dict[str, Path]:
    found = {}
    for package in (*PACKAGES, "tests"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from jobs import replay_job` imports the module jobs.replay_job
            names.update({node.module, *(f"{node.module}.{alias.name}" for alias in node.names)})
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] in PACKAGES}


def graph() -> dict[str, set[str]]:
    known = modules()

    def owner(name: str) -> str | None:  # `from jobs.x import f` names module jobs.x
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    return {name: {owner(target) for target in imports(path)} - {None, name}
            for name, path in known.items() if not name.startswith("tests")}


def test_no_module_edits_sys_path():
    offenders = [str(path.relative_to(REPO_ROOT)) for path in modules().values()
                 if any(isinstance(node, ast.Attribute) and node.attr == "path"
                        and isinstance(node.value, ast.Name) and node.value.id == "sys"
                        for node in ast.walk(ast.parse(path.read_text())))]
    assert offenders == []


def test_no_import_cycle():
    edges, cycles, done = graph(), [], set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            cycles.append(trail[trail.index(node):] + [node])
            return
        if node in done:
            return
        for target in sorted(edges.get(node, ())):
            visit(target, [*trail, node])
        done.add(node)

    for node in sorted(edges):
        visit(node, [])
    assert cycles == []


def test_conf_is_the_floor_and_no_job_imports_another_job():
    edges = graph()
    upward = {name: sorted(t for t in targets if not t.startswith("conf"))
              for name, targets in edges.items() if name.startswith("conf")}
    assert {name: targets for name, targets in upward.items() if targets} == {}
    entry_points = {name for name, path in modules().items()
                    if name.startswith(("jobs.", "dims.")) and "__main__" in path.read_text()}
    # `make demo` is the one orchestrator: it runs the generator, the streaming job and the
    # rollups in one process, one JVM, by calling their main().
    crossing = {name: sorted(targets & entry_points) for name, targets in edges.items()
                if name in entry_points and name != "jobs.demo"}
    assert {name: targets for name, targets in crossing.items() if targets} == {}


def test_the_engine_is_a_floor_under_the_jobs_and_the_models_need_no_spark():
    """engine/ imports no job (the jobs are built on it, not the other way round), and the
    attribution models are pure functions: no Spark anywhere in what they import."""
    edges = graph()
    upward = {name: sorted(t for t in targets if t.startswith(("jobs", "dims", "dashboards", "producers")))
              for name, targets in edges.items() if name.startswith("engine")}
    assert {name: targets for name, targets in upward.items() if targets} == {}
    models = REPO_ROOT / "jobs" / "attribution_models" / "models.py"
    assert not {name for name in imports_all(models) if name.split(".")[0] in ("pyspark", "py4j")}
    assert edges["jobs.attribution_models.models"] <= {"conf", *{n for n in edges if n.startswith("conf.")}}


def imports_all(path: Path) -> set[str]:
    """Every module `path` imports, the project's and others'."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names
