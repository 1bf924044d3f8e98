"""``syndof.generate`` split by purpose (docs/reliability.md §39): every name the module offered before the split
still names the same object through it, and each of the three new modules imports on its own, without the command."""

from __future__ import annotations

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
