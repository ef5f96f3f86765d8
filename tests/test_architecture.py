"""The one-way app order and the plumbing, checked in the code rather than only described.

`members` -> `loyalty` -> `segmentation` -> `rewards` -> `campaigns`: each app imports only from
those to its left. The project plumbing inside `loyalty/` (errors, COPY helpers, memory policy,
outbox, domain events, admin site, checks, the Celery app and settings) may be imported by
every app and imports no domain module itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_ORDER = ["members", "loyalty", "segmentation", "rewards", "campaigns"]
PLUMBING = (
    "loyalty.errors",
    "loyalty.pgcopy",
    "loyalty.process_cache",
    "loyalty.rawsql",
    "loyalty.memory",
    "loyalty.outbox",
    "loyalty.partner_api",
    "loyalty.audit",
    "loyalty.events",
    "loyalty.admin_site",
    "loyalty.admin_readonly",
    "loyalty.admin_paginator",
    "loyalty.admin_singleton",
    "loyalty.checks",
    "loyalty.celery",
    "loyalty.settings",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_plumbing(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in PLUMBING)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, lazy ones included."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # `from loyalty import events` imports the module loyalty.events: judge each name.
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def _sources():
    for app in APP_ORDER:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield app, path


def _violations() -> list[str]:
    problems = []
    for app, path in _sources():
        module = _module_name(path)
        plumbing = _is_plumbing(module)
        for line, target in _imports(path):
            target_app = target.split(".")[0]
            if target_app not in APP_ORDER:
                continue  # Django, libraries, the standard library
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            if plumbing and not _is_plumbing(target):
                problems.append(f"{where} (plumbing must not import domain code)")
            elif (
                not plumbing
                and not _is_plumbing(target)
                and APP_ORDER.index(target_app) > APP_ORDER.index(app)
            ):
                problems.append(f"{where} (an app to the right of {app})")
    return problems


def test_every_app_imports_only_from_apps_to_its_left_and_plumbing_imports_no_domain_code():
    assert _violations() == []


def test_the_checker_sees_a_reverse_import_and_a_plumbing_module_importing_the_domain():
    bad = ROOT / "members" / "_architecture_probe.py"
    bad.write_text("def f():\n    from rewards.models import Reward\n    return Reward\n")
    plumbing_probe = ROOT / "loyalty" / "outbox" / "_architecture_probe.py"
    plumbing_probe.write_text("from loyalty.models import Tier\n")
    try:
        problems = _violations()
    finally:
        bad.unlink()
        plumbing_probe.unlink()

    assert any("members/_architecture_probe.py:2 imports rewards.models" in p for p in problems)
    assert any("outbox/_architecture_probe.py:1 imports loyalty.models" in p for p in problems)
