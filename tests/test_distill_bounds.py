"""Size bounds of the Distill architecture configs (reliability.md §30, V1): ``student.*`` and ``teacher.*`` widths,
ASPP units and dilations, the attention reduction and the dropout rates, refused naming the key in a config, an
override and a model sidecar alike, as DMENet's (H51)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from dmenet.configlib import ConfigError
from dmenet.distill import summary
from dmenet.distill import train as T
from dmenet.distill.config import load_distill_config
from dmenet.distill.model_io import load_distill_model
from dmenet.models.model_io import ModelFileError
from hostile_helpers import assert_usage_error, run_main

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "distill" / "tiny.yaml"

BAD = ["teacher.aspp_mid=100000000", "teacher.aspp_mid=0", "teacher.aspp_growth=-1", "teacher.decoder=[5000,16,8,8]",
       "teacher.aspp_dilations=[0]", "teacher.aspp_dilations=[1000]", "teacher.aspp_dilations=[1,2,3,4,5,6,7,8,9]",
       "teacher.sa_reduction=0", "teacher.sa_reduction=1000", "teacher.aspp_dropout=1", "teacher.dropout=nan",
       "student.decoder=[100000000,16,16,16,8]", "student.decoder=[0,16,16,16,8]", "student.encoder=b9",
       "student.skip_at=middle"]


@pytest.mark.parametrize("override", BAD)
def test_v1_an_architecture_beyond_its_bounds_is_refused_naming_the_key(override):
    """``teacher.aspp_mid=100000000`` counted 474,820 M parameters, a 10⁸-channel student decoder failed to allocate
    2 TB with a traceback, a width of 0 was an IndexError, ``sa_reduction=0`` a ZeroDivisionError, an unknown
    encoder was refused only when the network was built, naming no key."""
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_distill_config(TINY, [override])


def test_v1_summary_and_train_say_one_line_before_any_network_is_built(tmp_path, capsys):
    rc, _, err = run_main(summary.main, ["--size", "64", "--set", "teacher.aspp_mid=100000000"], capsys)
    assert_usage_error(rc, err, "teacher.aspp_mid")
    out = tmp_path / "run"
    rc, _, err = run_main(T.main, ["--config", TINY, "--out", out, "--set", "student.decoder=[100000000,16,16,16,8]"],
                          capsys)
    assert_usage_error(rc, err, "student.decoder")
    assert not out.exists()


def test_v1_a_sidecar_beyond_the_bounds_is_refused_naming_it_and_the_shipped_files_and_the_bounds_load(tmp_path):
    cfg = load_distill_config(TINY, ["teacher.aspp_mid=4096", "teacher.sa_reduction=512", "teacher.aspp_dropout=0",
                                     "teacher.aspp_dilations=[128,1,1,1,1,1,1,1]", "student.decoder=[4096,1,1,1,1]"])
    assert cfg.teacher.aspp_mid == 4096 and cfg.student.decoder[0] == 4096
    assert load_distill_config(TINY, ["teacher.aspp_dilations=[]"]).teacher.aspp_dilations == ()  # no ASPP unit
    for config in sorted((ROOT / "experiments" / "distill").glob("*.yaml")):
        load_distill_config(config)
    shipped = ROOT / "checkpoints" / "distill_student"
    load_distill_model(shipped)
    shutil.copy(shipped.with_suffix(".safetensors"), tmp_path / "m.safetensors")
    info = json.loads(shipped.with_suffix(".json").read_text())
    info["config"]["decoder"] = [100000000, 64, 32, 24, 16]
    (tmp_path / "m.json").write_text(json.dumps(info))
    with pytest.raises(ModelFileError, match=r"m\.json.*student\.decoder"):
        load_distill_model(tmp_path / "m")
