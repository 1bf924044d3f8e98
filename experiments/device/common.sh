# Shared steps of the device scripts (sourced by galetto_pair.sh and distill_pair.sh; needs $PY and $DEV).

# kornia for the device (experiments/device/wheels.sh), when .whl is carried: installed into /tmp/site
install_wheels() {
    if ls .whl/*.whl >/dev/null 2>&1; then
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            .whl/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
}

# cuda_tests FILE: the CUDA-only tests in the background, output into FILE (on a CUDA device only). The galetto and
# distill ones need kornia (install_wheels); without it only tests/test_render.py's run.
cuda_tests() {
    local tests=(tests/test_render.py)
    $PY -c "import kornia" 2>/dev/null && tests+=(tests/test_galetto.py tests/test_distill.py)
    [ "$DEV" = cuda ] && { timeout 240 $PY -m pytest -q -p no:cacheprovider "${tests[@]}" -k "cuda or gpu" \
        > "$1" 2>&1 & }
    return 0
}
