"""One key builder (`keys.py`, issue 20): the embedding key and the cell key come from the same inputs
(helper modules found anywhere on `sys.path`, the aligner's library versions), each cell file holds its own
key, cached pack images are checked against their content hash, records carry `pairs_sha256` and the
model's kwargs, and a `-k` rerun after a model edit does not keep the other task's old cell."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pytest_facebench.data.formats import materialize, read_pack, verify_pack_images
from pytest_facebench.engine.options import EngineOptions
from pytest_facebench.storage import keys
from pytest_facebench.storage.cell_cache import CellStore
from pytest_facebench.storage.fingerprint import code_digest, local_imports
from pytest_facebench.storage.store_admin import verify
from pytest_facebench.tasks import AccuracyTask
from pytest_facebench.zoo.pixels import Pixels

MODEL = """
import json

import numpy as np
import labhelper
from torch import nn

from pytest_facebench.engine.model import BaseModel
from pytest_facebench.engine.preprocessing import Preprocessing


class Helped(BaseModel):
    preprocessing = Preprocessing(input_size=8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

    def __init__(self, *args, seed=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed = seed

    def _build_model(self):
        return nn.Sequential(nn.Flatten(), labhelper.Power())
"""

HELPER = """
from torch import nn

from labdeep import EXPONENT


class Power(nn.Module):
    def forward(self, x):
        return x.sign() * x.abs() ** EXPONENT
"""

GRID = """
[[models]]
name = "helped"
factory = "helpedmodel:Helped"
kwargs = { seed = 3 }

[[tasks]]
name = "verif"
type = "accuracy"
pairs = "data/verif.csv"
images = "data/images"
n_boot = 50

[[tasks]]
name = "sim"
type = "correlation"
pairs = "data/sim.csv"
images = "data/images"
n_boot = 50
"""


@pytest.fixture
def lab(tmp_path_factory, monkeypatch) -> Path:
    """A lab's helper folder on `sys.path` (as `PYTHONPATH` puts it), far from any model file:
    `labhelper` imports `labdeep` from a second folder."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    first = tmp_path_factory.mktemp("lab") / "deep" / "er"
    second = tmp_path_factory.mktemp("lab2") / "more"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    (first / "labhelper.py").write_text(HELPER)
    (second / "labdeep.py").write_text("EXPONENT = 1\n")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    for name in ("labhelper", "labdeep", "helpedmodel"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return second / "labdeep.py"


def test_user_modules_on_the_python_path_are_followed_transitively_libraries_are_not(lab, tmp_path):
    model_file = tmp_path / "models" / "helpedmodel.py"
    model_file.parent.mkdir()
    model_file.write_text(MODEL)
    found = {p.name for p in local_imports(model_file)}
    assert found == {"helpedmodel.py", "labhelper.py", "labdeep.py"}  # not json, numpy, torch nor facebench


def test_editing_a_python_path_helper_changes_the_model_code_digest(lab, tmp_path):
    model_file = tmp_path / "helpedmodel.py"
    model_file.write_text(MODEL)
    spec = importlib.util.spec_from_file_location("helpedmodel", model_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["helpedmodel"] = module
    spec.loader.exec_module(module)
    before = code_digest(module.Helped)
    lab.write_text("EXPONENT = 3\n")
    assert code_digest(module.Helped) != before


def test_a_rescore_after_editing_a_python_path_helper_matches_a_fresh_run(bench, lab):
    (bench.path / "helpedmodel.py").write_text(MODEL)
    (bench.path / "facebench.toml").write_text(GRID)
    bench.test_file()
    cache = bench.path / "cache"
    bench.run(out=bench.path / "cold", cache=cache).assert_outcomes(passed=2)
    lab.write_text("EXPONENT = 3\n")
    bench.run("--facebench-rescore", out=bench.path / "warm", cache=cache).assert_outcomes(passed=2)
    bench.run(out=bench.path / "fresh").assert_outcomes(passed=2)  # no cache at all
    cold, warm, fresh = (bench.results(bench.path / name) for name in ("cold", "warm", "fresh"))

    def auc(frame: pd.DataFrame) -> float:
        return float(frame[(frame["task"] == "sim") & (frame["metric"] == "correlation")]["value"].iloc[0])

    assert auc(warm) == auc(fresh) and auc(warm) != auc(cold)
    # records carry the full pairs hash and the model's kwargs (a baseline sees either change)
    verif = warm[warm["task"] == "verif"]
    assert set(verif["pairs_sha256"]) == {hashlib.sha256((bench.data / "verif.csv").read_bytes()).hexdigest()}
    assert {json.loads(k)["seed"] for k in verif["kwargs"]} == {3}  # given kwargs, with defaults filled in


def test_a_k_rerun_after_a_model_edit_does_not_keep_the_other_tasks_old_cell(bench, lab):
    (bench.path / "helpedmodel.py").write_text(MODEL)
    (bench.path / "facebench.toml").write_text(GRID)
    bench.test_file()
    out = bench.path / "out"
    bench.run(out=out).assert_outcomes(passed=2)
    assert set(bench.results(out)["task"]) == {"verif", "sim"}
    bench.run("-k", "sim", out=out).assert_outcomes(passed=1)  # unchanged code: verif's cell is kept
    assert set(bench.results(out)["task"]) == {"verif", "sim"}
    lab.write_text("EXPONENT = 3\n")  # the model's numbers change
    result = bench.run("-k", "sim", out=out)
    result.assert_outcomes(passed=1)
    assert set(bench.results(out)["task"]) == {"sim"}  # verif's cell came from the old code
    result.stdout.fnmatch_lines(
        [
            "1 earlier cell not kept, stale: test_*[[]helped-verif[]] (labdeep.py changed since it ran; listed in run.json); run it again to include it"
        ]
    )
    stale = json.loads((out / "run.json").read_text())["cells"]["stale"]
    assert list(stale) == [n for n in stale if n.endswith("[helped-verif]")] and str(lab) in stale[next(iter(stale))]


def test_the_cell_key_holds_the_embedding_inputs_and_the_aligners_library_versions(bench, monkeypatch):
    import pytest_facebench.faces.aligner as aligner

    task = AccuracyTask("verif", bench.data / "verif.csv", bench.data / "images").load()
    model = Pixels(name="px", size=4, align="arcface_112")
    options = EngineOptions(device="cpu")
    inputs = keys.cell_inputs(model, task, options)
    assert inputs["embedding"] == keys.embedding_inputs(model, options, device="cpu")
    assert inputs["pairs_sha256"] == hashlib.sha256((bench.data / "verif.csv").read_bytes()).hexdigest()
    cell, embedding = keys.cell_key(model, task, options), keys.embedding_keys(inputs["embedding"], model)
    monkeypatch.setattr(aligner, "first_version", lambda *names: "99.0")  # an opencv upgrade
    assert keys.cell_key(model, task, options) != cell
    assert keys.embedding_keys(keys.embedding_inputs(model, options, device="cpu"), model) != embedding


def test_a_cell_file_renamed_over_another_is_not_reused_and_verify_flags_it(tmp_path, caplog):
    store = CellStore(tmp_path)
    first, second = "aa" * 16, "bb" * 16
    store.put(first, {"model": "m", "value": 0.25})
    store.put(second, {"model": "m", "value": 0.75})
    assert store.get(second) == {"model": "m", "value": 0.75}
    assert verify(tmp_path)["problems"] == []
    shutil.copyfile(store.path(first), store.path(second))
    assert store.get(second) is None
    assert "holds the cell of key" in caplog.text
    assert store.get(first) == {"model": "m", "value": 0.25}
    report = verify(tmp_path)
    assert report["cells_corrupt"] == 1 and str(store.path(second)) in report["problems"][0]
    assert verify(tmp_path, repair=True)["repaired"] == 1 and not store.path(second).exists()


def _jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_a_cached_pack_image_altered_on_disk_is_written_again_and_verify_flags_it(tmp_path, caplog):
    import pickle

    images = [_jpeg(i) for i in range(8)]
    (tmp_path / "p.bin").write_bytes(pickle.dumps((images, [True, False, True, False])))
    pack = read_pack(tmp_path / "p.bin", trusted=True)
    folder = tmp_path / "packs" / pack.sha256[:16]
    paths = materialize(pack, folder)
    assert verify_pack_images(tmp_path / "packs") == (8, [])
    altered = paths[3]
    data = bytearray(altered.read_bytes())
    data[-20:-10] = bytes(10)
    altered.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    cache.mkdir()
    report = verify(cache, packs=tmp_path / "packs")
    assert report["pack_images_corrupt"] == 1 and str(altered) in report["problems"][0]
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_facebench",
            "cache",
            "verify",
            "--cache",
            str(cache),
            "--packs",
            str(tmp_path / "packs"),
        ],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 1 and "pack image altered on disk" in cli.stdout
    assert materialize(pack, folder)[3] == altered and altered.read_bytes() == images[3]  # read: written again
    assert "was altered on disk" in caplog.text
    assert verify_pack_images(tmp_path / "packs") == (8, [])
