"""``syndof.generate`` split by purpose (docs/reliability.md §39): every name the module offered before the split
still names the same object through it, and each of the three new modules imports on its own, without the command."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from syndof import generate, layout, recipe, sample

REPO = Path(__file__).resolve().parents[1]

MOVED = {
    sample: ("SampleResult", "generate_sample", "sample_rng", "sigma_over_limit"),
    layout: ("MAX_COUNT", "SUBDIRS", "incomplete_beyond", "is_complete", "rebuild_manifest", "sample_paths",
             "sample_stem", "write_sample"),
    recipe: ("DATASET_FORMAT", "GENERATOR", "INPUT_KEYS", "INPUT_NOTES", "MIN_MAX_SIZE", "RECIPE_KEYS",
             "changed_source", "check_out_dir", "check_recipe", "max_coc_problem", "option_problem",
             "sources_digest"),
}
"""The public names syndof.generate defined before the split, by the module that defines them now."""
STAYED = ("EXAMPLE", "Job", "JobResult", "Status", "Summary", "build_parser", "generate", "main", "parse_shard",
          "run_job")


def test_every_name_syndof_generate_offered_is_the_object_its_new_module_defines():
    """A copy left behind (or defined again) in generate.py would drift from the one the other modules call; a
    dropped re-export would break ``syndof.generate.NAME`` for callers outside the repository."""
    for module, names in MOVED.items():
        for name in names:
            assert getattr(generate, name) is getattr(module, name), f"syndof.generate.{name}"
            assert name in generate.__all__, name
    for name in STAYED:
        if name != "EXAMPLE":  # a str
            assert getattr(generate, name).__module__ == "syndof.generate", name
    assert sorted(generate.__all__) == sorted([n for names in MOVED.values() for n in names] + list(STAYED))


@pytest.mark.parametrize("name", ["syndof.sample", "syndof.layout", "syndof.recipe"])
def test_each_new_module_imports_first_in_a_fresh_process_without_the_command(name):
    """No import cycle whichever module is imported first (sample → recipe → layout; layout names SampleResult for
    annotations only), and none of them loads syndof.generate."""
    code = f"import sys, {name}; assert 'syndof.generate' not in sys.modules, sorted(sys.modules)"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("value, ok", [(2, True), (29, True), (255, True), (29.0, True), (np.int64(9), True),
                                       (1, False), (256, False), (9.7, False), (float("nan"), False),
                                       (float("inf"), False), (10**400, False), (True, False), (None, False),
                                       ("abc", False), ([29], False)])
def test_max_coc_problem_accepts_and_refuses_as_before_through_is_finite_number(value, ok):
    """reliability.md §48: ``recipe._number_in`` reads finiteness with ``syndof.units.is_finite_number``; what
    ``max_coc_problem`` takes and refuses is unchanged (a whole number in 2..255; 10**400 a line, not OverflowError)."""
    problem = recipe.max_coc_problem(value)
    assert (problem is None) is ok
    if not ok:
        assert problem.startswith("--max-coc must be an integer in 2..255")


# ---------------------------------------------------------- replacements of a moved name reach the code (§39, §40, §45)
def _module_sources() -> dict[str, ast.Module]:
    """Every module of syndof/ and dmenet/ by dotted name (a package by its own name), parsed."""
    trees = {}
    for path in sorted([*(REPO / "syndof").rglob("*.py"), *(REPO / "dmenet").rglob("*.py")]):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        trees[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return trees


def _moved_names(trees: dict[str, ast.Module]) -> dict[str, dict[str, str]]:
    """{old module: {moved name: its home module}}: the split modules are the plain (non-package) modules with an
    ``__all__``; a moved name is one their ``__all__`` lists that the module binds only by ``from HOME import``."""
    moved = {}
    for name, tree in trees.items():
        exported = [node for node in tree.body if isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)]
        if not exported or (REPO / name.replace(".", "/") / "__init__.py").exists():
            continue
        homes, defined = {}, set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                homes.update({a.asname or a.name: node.module for a in node.names})
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                defined.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        moved[name] = {n: homes[n] for n in ast.literal_eval(exported[-1].value) if n in homes and n not in defined}
    return moved


def _aliases(tree: ast.Module, modules) -> dict[str, str]:
    """{local name: module it names} for the imports anywhere in ``tree`` (``import a.b`` binds ``a``)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names
                          if f"{node.module}.{a.name}" in modules})
    return names


def _dotted(node, names: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, names)
        return base and f"{base}.{node.attr}"
    return None


def _lookups(trees: dict[str, ast.Module]) -> set[tuple[str, str]]:
    """(module, name) pairs where code of syndof/dmenet reads ``name`` from ``module`` when it runs: a bare name in
    the module's own code, ``module.name`` anywhere, or ``from module import name`` inside a function. A replacement
    of ``module.name`` reaches exactly these reads."""
    found = set()
    for name, tree in trees.items():
        aliases = _aliases(tree, trees)
        found.update((name, n.id) for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                base = _dotted(node.value, aliases)
                if base in trees:
                    found.add((base, node.attr))
        at_import, stack = set(), list(tree.body)  # the imports run once, when the module is imported
        while stack:
            node = stack.pop()
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                at_import.add(node)
                stack.extend(ast.iter_child_nodes(node))
        found.update((node.module, a.name) for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node not in at_import for a in node.names)
    return found


def _replacements(tree: ast.Module, modules) -> list[tuple[int, str, str]]:
    """(line, module, name) of each replacement of a module's name in ``tree``: ``monkeypatch.setattr(mod, "name",
    …)``, ``setattr(mod, …)``, ``mock.patch.object(mod, "name")``, ``monkeypatch.setattr("mod.name", …)``,
    ``mock.patch("mod.name")`` and ``mod.name = …``."""
    aliases, found = _aliases(tree, modules), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            args = node.args
            if func in ("setattr", "object") and len(args) >= 2 and isinstance(args[1], ast.Constant):
                module = _dotted(args[0], aliases)
                if module in modules:
                    found.append((node.lineno, module, args[1].value))
            if func in ("setattr", "patch") and args and isinstance(args[0], ast.Constant) \
                    and isinstance(args[0].value, str):
                module, _, name = args[0].value.rpartition(".")
                if module in modules:
                    found.append((node.lineno, module, name))
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            module = _dotted(node.value, aliases)
            if module in modules:
                found.append((node.lineno, module, node.attr))
    return sorted(found)


def replacements_that_reach_nothing(sources: dict[str, str]) -> list[str]:
    """``file:line`` lines for each replacement, in ``sources`` ({file name: Python source}), of a name a split
    module re-exports (``__all__``) made through the old module or its home where no code of syndof/dmenet looks
    it up: ``monkeypatch.setattr(generate, "sigma_over_limit", fake)`` changes the re-export only (syndof.sample's
    code calls its own), so the fake never runs and the test may pass without testing anything."""
    trees = _module_sources()
    moved, lookups = _moved_names(trees), _lookups(trees)
    watched = {}  # (module, name) → the other module of the pair (old ↔ home)
    for old, names in moved.items():
        for name, home in names.items():
            watched[(old, name)], watched[(home, name)] = home, old
    problems = []
    for file, source in sources.items():
        for line, module, name in _replacements(ast.parse(source, file), trees):
            if (module, name) in watched and (module, name) not in lookups:
                where = sorted(m for m in (module, watched[(module, name)]) if (m, name) in lookups)
                problems.append(f"{file}:{line}: replaces {module}.{name}, which no code looks up there "
                                f"(looked up in: {', '.join(where) or 'nothing'})")
    return problems


def test_no_test_or_benchmark_replaces_a_moved_name_where_nothing_looks_it_up():
    """A fake put where no code reads the name never runs (docs/reliability.md §39, §40, §45): the split modules'
    code reads each moved name either from its own globals (``Predictor.detection_logit`` reads
    ``dmenet.inference.calibration_logit``; ``run_job`` reads ``syndof.generate.write_sample``) or from the home
    module's, so a replacement must be made where the code under test reads it, which this checks statically."""
    files = [p for top in ("tests", "benchmarks", "experiments") for p in sorted((REPO / top).rglob("*.py"))]
    sources = {str(p.relative_to(REPO)): p.read_text(encoding="utf-8") for p in files}
    problems = replacements_that_reach_nothing(sources)
    assert not problems, "\n".join(problems)


def test_the_replacement_scan_names_each_form_that_reaches_nothing_and_passes_those_that_reach():
    """Each way a test replaces a name, through the old module and through the home module: the pure re-exports
    (nothing in syndof/dmenet reads ``syndof.generate.sigma_over_limit``) and ``dmenet.logits.calibration_logit``
    (the predictor reads ``dmenet.inference``'s) are named with their line; the names the old module's own code reads
    (``calibration_logit``, ``write_sample``) and names it defines (``run_job``) pass."""
    source = '''
from unittest import mock
from dmenet import inference, logits
from syndof import blur
from syndof import generate as gen
import dmenet.config

def test(monkeypatch):
    monkeypatch.setattr(gen, "sigma_over_limit", fake)
    setattr(blur, "merge_plan", fake)
    mock.patch("syndof.generate.sigma_over_limit")
    mock.patch.object(inference, "direct_calibration_logit", fake)
    monkeypatch.setattr("dmenet.config.flat_keys", fake)
    dmenet.config.flat_keys = fake
    monkeypatch.setattr(logits, "calibration_logit", fake)
    monkeypatch.setattr(inference, "calibration_logit", fake)
    monkeypatch.setattr(gen, "write_sample", fake)
    monkeypatch.setattr(gen, "run_job", fake)
'''
    problems = replacements_that_reach_nothing({"t.py": source})
    assert [p.split(": ")[1].split(",")[0] for p in problems] == [
        "replaces syndof.generate.sigma_over_limit", "replaces syndof.blur.merge_plan",
        "replaces syndof.generate.sigma_over_limit", "replaces dmenet.inference.direct_calibration_logit",
        "replaces dmenet.config.flat_keys", "replaces dmenet.config.flat_keys",
        "replaces dmenet.logits.calibration_logit"], problems
    assert [p.split(":")[1] for p in problems] == ["9", "10", "11", "12", "13", "14", "15"]
    assert problems[-1].endswith("(looked up in: dmenet.inference)"), problems[-1]
