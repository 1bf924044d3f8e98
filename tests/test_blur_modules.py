"""``syndof.blur`` split by purpose (docs/reliability.md §45): every name the module offered before the split still
names the same object through it, each of the five new modules imports on its own, and the helpers of the fast
renderer are found where tests and benchmarks replace them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from syndof import blur, blur_reference, convolve, fill_plans, layer_merge, render_checks

REPO = Path(__file__).resolve().parents[1]

MOVED = {
    blur_reference: ("ALPHA_EPS", "BAND_EPS", "render_layers_reference"),
    convolve: ("filter_symmetric", "symmetric_pad"),
    render_checks: ("COC_TOLERANCE", "MAX_MAX_COC", "check_max_coc", "coc_problem"),
    layer_merge: ("MERGE_SLACK", "check_merge_tolerance", "merge_layers", "merge_plan"),
}
"""The public names syndof.blur defined before the split, by the module that defines them now."""
STAYED = ("render_layers",)

NEW_MODULES = ["syndof.blur_reference", "syndof.convolve", "syndof.render_checks", "syndof.layer_merge",
               "syndof.fill_plans"]


def test_every_name_syndof_blur_offered_is_the_object_its_new_module_defines():
    """A copy left behind (or defined again) in blur.py would drift from the one the reference loop calls; a dropped
    re-export would break ``syndof.blur.NAME`` for callers outside the repository."""
    for module, names in MOVED.items():
        for name in names:
            assert getattr(blur, name) is getattr(module, name), f"syndof.blur.{name}"
            assert name in blur.__all__, name
    for name in STAYED:
        assert getattr(blur, name).__module__ == "syndof.blur", name
    assert sorted(blur.__all__) == sorted([n for names in MOVED.values() for n in names] + list(STAYED))


def test_the_fast_renderer_and_the_reference_call_the_same_helpers():
    """The two renderers must share one input check, one merge, one set of kernels and one output step: the fast
    one's equality to the reference (< 1e-10) is the only check of its tiling."""
    for name in ("check_dtype", "check_inputs", "maybe_merge", "layer_kernels", "Conv", "symmetric_pad",
                 "layer_table", "finish", "ALPHA_EPS", "BAND_EPS"):
        assert getattr(blur, name) is getattr(blur_reference, name), name
    for name in ("apply_fill", "plan_fill", "release_plan"):
        assert getattr(blur, name) is getattr(fill_plans, name), name


@pytest.mark.parametrize("name", NEW_MODULES)
def test_each_new_module_imports_first_in_a_fresh_process_without_the_renderer(name):
    """No import cycle whichever module is imported first (render_checks, layer_merge, convolve, fill_plans import
    none of the others; blur_reference imports those three; blur imports all), and none of them loads
    syndof.blur."""
    code = f"import sys, {name}; assert 'syndof.blur' not in sys.modules, sorted(sys.modules)"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
