"""Numbers you can trust (issue 10): non-finite embeddings, ratings and human values are errors naming
what is wrong; checkpoints never run code unless the grid says `trusted = true`; and the smaller silent
failures: a task restricted to an unknown model, `[defaults]` keys, duplicate columns, a ';'-delimited
.csv, a UTF-8 error's line and byte."""

from __future__ import annotations

import argparse
import os
import re
from collections import OrderedDict
from pathlib import Path

import pandas as pd
import pytest
import torch
from testkit import one_line_failure
from torch import nn

from pytest_facebench.engine.hub import hf_from_pretrained
from pytest_facebench.engine.model import read_state_dict
from pytest_facebench.errors import ModelError

NAN_MODEL = """
import torch
from torch import nn

from pytest_facebench.engine.model import BaseModel
from pytest_facebench.engine.preprocessing import Preprocessing


class Holes(nn.Module):
    def forward(self, x):
        out = x.flatten(1).clone()
        out[:, 0] = float("nan")
        return out


class NanModel(BaseModel):
    preprocessing = Preprocessing(input_size=4, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

    def _build_model(self):
        return Holes()
"""


def grid(bench, models: str, tasks: str) -> None:
    (bench.path / "facebench.toml").write_text(models + tasks)
    bench.test_file()


TASK = """
[[tasks]]
name = "{name}"
type = "{type}"
pairs = "data/{name}.csv"
images = "data/images"
n_boot = 20
{extra}
"""


def task(name: str, type_: str, extra: str = "") -> str:
    return TASK.format(name=name, type=type_, extra=extra)


PIXELS = """
[[models]]
name = "pixels"
factory = "pixels"
kwargs = { size = 8 }
"""


# --- non-finite values ----------------------------------------------------------------------------
def test_nan_embeddings_fail_the_cell_naming_model_layer_count_and_images(bench):
    (bench.path / "nanmodel.py").write_text(NAN_MODEL)
    grid(
        bench,
        PIXELS + '[[models]]\nname = "holes"\nfactory = "nanmodel:NanModel"\n',
        task("sim", "correlation") + task("verif", "accuracy"),
    )
    result = bench.run()
    result.assert_outcomes(passed=2, failed=2)
    for cell in ("holes-sim", "holes-verif"):
        line = one_line_failure(result, f"test_x[{cell}]")
        assert re.search(
            r"ModelError: model 'holes', layer 'output': 12 image\(s\) gave NaN or infinite values, "
            r"e.g. \S*img00\.png, \S*img01\.png, \S*img02\.png \(and 9 more\)$",
            line,
        ), line
    results = bench.results()
    assert set(results["model"]) == {"pixels"}  # no NaN number reached the tables
    bench.run(cache=bench.path / "cache")  # a cached run cannot reuse a NaN row either: it was never stored
    again = bench.run(cache=bench.path / "cache")
    again.assert_outcomes(passed=2, failed=2)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_a_non_finite_rating_is_rejected_naming_the_line(bench, value):
    sim = bench.pairs["sim"].astype({"distance": str})
    sim.loc[4, "distance"] = value  # line 6
    sim.to_csv(bench.data / "sim.csv", index=False)
    grid(bench, PIXELS, task("sim", "correlation") + task("verif", "accuracy"))
    result = bench.run()
    result.assert_outcomes(passed=1, errors=1)
    line = one_line_failure(result, "ERROR at setup of test_x[pixels-sim]")
    assert re.search(rf"column 'distance' must hold finite numbers; found '{value}' on line\(s\) 6$", line), line


def test_non_finite_participant_ratings_and_human_values_are_rejected(bench):
    sim = bench.pairs["sim"].rename(columns={"distance": "rater_1"})
    sim["rater_2"] = sim["rater_1"].astype(str)
    sim.loc[2, "rater_2"] = "inf"  # line 4; a blank cell would be a missing rating, inf is an error
    sim.to_csv(bench.data / "sim.csv", index=False)
    grid(
        bench,
        PIXELS,
        task("sim", "correlation", 'participants_glob = "rater_*"')
        + task(
            "inv",
            "relative_difference",
            'columns = { group = "orientation" }\ngroups = ["inverted", "upright"]\nhuman_effect = inf',
        ),
    )
    result = bench.run()
    result.assert_outcomes(errors=2)
    assert re.search(
        r"column 'rater_2' must hold finite numbers; found 'inf' on line\(s\) 4$",
        one_line_failure(result, "ERROR at setup of test_x[pixels-sim]"),
    )
    assert "human_effect must be a finite number" in result.stdout.str()


# --- checkpoints -----------------------------------------------------------------------------------
class Payload:
    """Unpickling this runs a shell command (what a crafted checkpoint does)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


TINY_WEIGHTS_GRID = """
[[models]]
name = "tiny"
factory = "tinymodel:Tiny"
layers = ["fc"]
kwargs = {{ weights = "{weights}" }}
{extra}
"""


def tiny_state(bench) -> OrderedDict[str, torch.Tensor]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_for_weights", bench.path / "tinymodel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Tiny(name="t")._build_model().state_dict()


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(bench, tmp_path):
    marker = tmp_path / "pwned"
    evil = bench.path / "evil.pth"
    torch.save({"state_dict": tiny_state(bench), "extra": Payload(marker)}, evil)
    grid(bench, TINY_WEIGHTS_GRID.format(weights=evil, extra=""), task("verif", "accuracy"))
    result = bench.run()
    result.assert_outcomes(failed=1)
    line = one_line_failure(result, "test_x[tiny-verif]")
    assert f"checkpoint {evil} holds Python objects beyond tensors" in line
    assert "it refers to posix.system" in line
    assert "set `trusted = true` on the model's grid entry" in line
    assert not marker.exists()
    with pytest.raises(ModelError, match="loading it would run code"):
        read_state_dict(evil, "m")
    assert not marker.exists()


def test_trusted_true_on_the_grid_entry_opts_in_to_unpickling(bench):
    checkpoint = bench.path / "with_args.pth"  # real checkpoints often carry an argparse.Namespace
    torch.save({"state_dict": tiny_state(bench), "args": argparse.Namespace(lr=0.1)}, checkpoint)
    grid(bench, TINY_WEIGHTS_GRID.format(weights=checkpoint, extra=""), task("verif", "accuracy"))
    refused = bench.run(out=bench.path / "refused")
    refused.assert_outcomes(failed=1)
    assert "argparse.Namespace" in one_line_failure(refused, "test_x[tiny-verif]")
    grid(bench, TINY_WEIGHTS_GRID.format(weights=checkpoint, extra="trusted = true"), task("verif", "accuracy"))
    bench.run(out=bench.path / "trusted").assert_outcomes(passed=1)
    grid(bench, TINY_WEIGHTS_GRID.format(weights=checkpoint, extra='trusted = "yes"'), task("verif", "accuracy"))
    assert "'trusted' must be true or false" in bench.run(out=bench.path / "bad").stdout.str()


def test_a_file_that_is_not_a_checkpoint_says_so(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ModelError, match=r"checkpoint .*garbage.pth: (not a PyTorch checkpoint|cannot read it)"):
        read_state_dict(garbage, "m")


def test_hugging_face_models_never_run_repo_code_unless_trusted_and_prefer_safetensors(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    seen = {}

    class Fake:
        __name__ = "Fake"

        @staticmethod
        def from_pretrained(source, **kwargs):
            seen.update(kwargs)
            return nn.Identity(), {"missing_keys": [], "mismatched_keys": []}

    hf_from_pretrained(Fake, str(tmp_path), None, "m")
    assert seen["trust_remote_code"] is False and seen["use_safetensors"] is True
    hf_from_pretrained(Fake, str(tmp_path), None, "m", trusted=True)
    assert seen["trust_remote_code"] is True


# --- smaller silent failures ----------------------------------------------------------------------
def test_a_task_restricted_to_an_unknown_model_is_an_error(bench):
    grid(bench, PIXELS, task("verif", "accuracy", 'models = ["pixel"]') + task("sim", "correlation"))
    result = bench.run()
    result.assert_outcomes(passed=1, failed=1)
    assert re.search(
        r"'models' names 'pixel' \(did you mean 'pixels'\?\), not in the grid; its models are pixels",
        result.stdout.str(),
    )


def test_defaults_apply_every_task_option_and_reject_unknown_keys(bench):
    grid(
        bench,
        "[defaults]\nn_boot = 30\nseed = 3\nfolds = 4\n" + PIXELS,
        task("verif", "accuracy").replace("n_boot = 20\n", "") + task("sim", "correlation").replace("= 20", "= 10"),
    )
    bench.run().assert_outcomes(passed=2)
    results = bench.results().set_index(["task", "metric"])
    assert results.loc[("verif", "auc"), "ci_method"].startswith("bootstrap(30,")
    assert results.loc[("sim", "correlation"), "ci_method"].startswith("bootstrap(10,")  # the task's own wins
    assert results.loc[("verif", "accuracy_kfold"), "protocol"].startswith("stratified 4-fold")
    grid(bench, "[defaults]\nn_bot = 30\n" + PIXELS, task("verif", "accuracy"))
    text = bench.run(out=bench.path / "bad").stdout.str()
    assert "unknown key 'n_bot'; did you mean 'n_boot'?" in text


@pytest.mark.parametrize(
    "case, content, pattern",
    [
        (
            "duplicate",
            "img1,img2,label,label\n{a},{b},1,0\n{b},{a},0,1\n",
            r"line 1: column name 'label' appears twice \(columns 3 and 4\)",
        ),
        (
            "semicolon",
            "img1;img2;label\n{a};{b};1\n{b};{a};0\n",
            r"line 1: the header 'img1;img2;label' is semicolon-delimited, but a \.csv file is read as comma-separated",
        ),
        ("tab", "img1\timg2\tlabel\n{a}\t{b}\t1\n{b}\t{a}\t0\n", r"is tab-delimited.*or rename it to \.tsv"),
    ],
)
def test_pairs_file_header_problems_are_named(bench, case, content, pattern):
    a, b = bench.image_name(0), bench.image_name(1)
    (bench.data / "verif.csv").write_text(content.format(a=a, b=b))
    grid(bench, PIXELS, task("verif", "accuracy") + task("sim", "correlation"))
    result = bench.run()
    result.assert_outcomes(passed=1, errors=1)
    assert re.search(pattern, one_line_failure(result, "ERROR at setup of test_x[pixels-verif]"))


def test_a_utf8_error_names_the_line_and_byte(bench):
    a, b = bench.image_name(0), bench.image_name(1)
    (bench.data / "verif.csv").write_bytes(
        f"img1,img2,label\n{a},{b},1\n{b},{a},0\n".encode() + b"caf\xe9.png," + a.encode() + b",1\n"
    )
    grid(bench, PIXELS, task("verif", "accuracy"))
    result = bench.run()
    line = one_line_failure(result, "ERROR at setup of test_x[pixels-verif]")
    assert re.search(r"verif\.csv, line 4, byte 4: not UTF-8 text \(byte 0xe9\)", line), line


def test_pairs_read_without_errors_keep_their_values(bench):
    frame = pd.read_csv(bench.data / "verif.csv")
    assert list(frame.columns) == ["img1", "img2", "label"]
