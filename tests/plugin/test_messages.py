"""One clear line for the faults that used to end in a misleading message or a traceback (issue 11): a
factory that raises, a kwarg of the wrong type, a model that returns too few rows or a scalar, an image
deleted mid-run, an LFW header that disagrees with its lines, a directory given as a pairs file, and an
enormous n_boot."""

from __future__ import annotations

import re

import pytest
from testkit import one_line_failure

from pytest_facebench.errors import ConfigError
from pytest_facebench.stats import Bootstrap

BAD_MODELS = """
from torch import nn

from pytest_facebench.engine.model import BaseModel
from pytest_facebench.engine.preprocessing import Preprocessing


def read_config(path):
    raise ValueError(f"no such config section in {path}")


class Raises(BaseModel):
    def __init__(self, *args, config="net.cfg", **kwargs):
        super().__init__(*args, **kwargs)
        read_config(config)

    def _build_model(self):
        return nn.Identity()


class Drop(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:-1]


class Scalar(nn.Module):
    def forward(self, x):
        return x.sum()


class Shaped(BaseModel):
    preprocessing = Preprocessing(input_size=4, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

    def __init__(self, *args, kind="drop", **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind

    def _build_model(self):
        return Drop() if self.kind == "drop" else Scalar()
"""

TASK = """
[[tasks]]
name = "verif"
type = "accuracy"
pairs = "data/verif.csv"
images = "data/images"
n_boot = 0
"""


def model(name: str, factory: str, kwargs: str = "") -> str:
    return f'[[models]]\nname = "{name}"\nfactory = "{factory}"\n' + (f"kwargs = {{ {kwargs} }}\n" if kwargs else "")


@pytest.fixture
def project(bench):
    (bench.path / "badmodels.py").write_text(BAD_MODELS)
    return bench


def run_grid(bench, models: str, test: str | None = None) -> pytest.RunResult:
    (bench.path / "facebench.toml").write_text(models + TASK)
    bench.test_file(test) if test else bench.test_file()
    return bench.run()


def test_a_factory_that_raises_names_the_entry_the_exception_and_the_user_frame(project):
    result = run_grid(project, model("broken", "badmodels:Raises"))
    line = one_line_failure(result, "test_x[broken-verif]")
    assert re.search(
        r"^ModelError: .*facebench\.toml, models\[0\] \('broken'\): badmodels:Raises\(\.\.\.\) raised "
        r"ValueError: no such config section in net\.cfg \(at .*badmodels\.py:\d+ in read_config\)$",
        line,
    ), line


def test_a_kwarg_of_the_wrong_type_is_named_before_the_model_runs(project):
    result = run_grid(project, model("px", "pixels", 'size = "big"'))
    line = one_line_failure(result, "test_x[px-verif]")
    assert re.search(
        r"models\[0\] \('px'\): kwargs\.size must be int \(the annotation of the 'size' parameter of "
        r"Pixels\), got 'big'$",
        line,
    ), line
    unknown = run_grid(project, model("px", "pixels", "sise = 8"))
    assert "unexpected keyword argument 'sise'" in one_line_failure(unknown, "test_x[px-verif]")


@pytest.mark.parametrize("kind, shape", [("drop", r"shape \(\d+, 48\)"), ("scalar", "a scalar")])
def test_a_model_with_the_wrong_number_of_rows_says_so(project, kind, shape):
    result = run_grid(project, model("shaped", "badmodels:Shaped", f'kind = "{kind}"'))
    line = one_line_failure(result, "test_x[shaped-verif]")
    assert re.search(
        rf"model 'shaped', layer 'output': gave {shape} for a batch of \d+ image\(s\); expected one row "
        rf"per image",
        line,
    ), line


def test_an_image_deleted_during_the_run_is_named(project):
    test = (
        "import os\n\ndef test_x(model, task, facebench):\n    os.remove(task.images[0])\n"
        "    facebench.evaluate(model, task)\n"
    )
    result = run_grid(project, model("px", "pixels", "size = 8"), test)
    line = one_line_failure(result, "test_x[px-verif]")
    assert re.search(r"DataError: .*image not found: \S+img00\.png \(it was there when the task was loaded", line), line


def test_an_lfw_header_that_disagrees_with_its_lines_names_the_mismatch(project):
    lines = ["2 3"] + [f"Ann {i} {i + 1}" for i in range(1, 4)] + [f"Ann {i} Bob {i}" for i in range(1, 4)]
    (project.data / "pairs.txt").write_text("\n".join(lines) + "\n")
    (project.path / "facebench.toml").write_text(
        model("px", "pixels", "size = 8") + TASK.replace("verif.csv", "pairs.txt")
    )
    project.test_file()
    result = project.run()
    line = one_line_failure(result, "ERROR at setup of test_x[px-verif]")
    assert re.search(
        r"pairs\.txt, line 1: the header '2 3' announces 2 sets of 3 same and 3 different pairs "
        r"\(12 lines\), but the file has 6 pair lines$",
        line,
    ), line


def test_a_directory_given_as_the_pairs_file_says_it_is_a_directory(project):
    (project.path / "facebench.toml").write_text(
        model("px", "pixels", "size = 8") + TASK.replace("data/verif.csv", "data/images")
    )
    project.test_file()
    result = project.run()
    line = one_line_failure(result, "ERROR at setup of test_x[px-verif]")
    assert re.search(r"pairs file \S+images is a directory; expected a pairs file", line), line


def test_an_enormous_n_boot_is_allowed_with_a_warning():
    with pytest.warns(UserWarning, match=r"n_boot = 100,000,000 resamples: percentile intervals are stable"):
        Bootstrap.checked(100_000_000, 0, 0.95, "t")
    with pytest.raises(ConfigError, match="n_boot must be a whole number >= 0"):
        Bootstrap.checked(-1, 0, 0.95, "t")
