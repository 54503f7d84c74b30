"""bench/device_check.sh and bench/device_summary.py: the summary's arithmetic against hand-computed ratios,
the GPU-only test discovery on a hand-written tests tree, and — SLOW (about a minute, several on a loaded
machine) — the whole check end to end in its CPU dry run."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "device_check.sh"


def _load_summary_module():
    spec = importlib.util.spec_from_file_location("device_summary", REPO / "bench" / "device_summary.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["device_summary"] = module
    spec.loader.exec_module(module)
    return module


ds = _load_summary_module()
TARGET_IDS = (
    [f"sustained/model_only[{p},pil]" for p in ("fp32", "bf16")]
    + [f"naive/task_{w}[{p},pil]" for p in ("fp32", "bf16") for w in ("cold", "warm")]
    + ["task_cold_s[fp32]", "task_warm_s[fp32]", "task_process_cold_s[fp32]", "task_cold_s[bf16]", "task_warm_s[bf16]"]
    + ["grid_cold_s", "grid_cold/grid_warm"]
)


def _pil_run() -> dict:
    """A throughput.py report as the CUDA run writes it (figures chosen so each ratio is easy by hand)."""
    return {
        "args": {
            "images": 2000,
            "pairs": 6000,
            "sustained": 13000,
            "naive_pairs": 1500,
            "batch_size": 128,
            "model_only_iters": 20,
            "grid_args": "",
        },
        "fp32": {
            "model_only_img_s": 900.0,
            "model_only_channels_last_img_s": 1000.0,
            "sustained": {"images_per_s": 860.0, "gpu_utilisation": {"mean_pct": 93.5, "median_pct": 97.0}},
            "task_cold_s": 2.0,
            "task_warm_s": 0.4,
            "task_process": {"cold": 7.5, "warm": 3.0, "cold_rc": 0, "warm_rc": 0},
        },
        "bf16": {
            "model_only_img_s": 2000.0,
            "sustained": {"images_per_s": 1300.0},
            "task_cold_s": 8.0,
            "task_warm_s": 0.75,
        },
        "naive": {"pairs": 1500, "seconds": 15.0, "extrapolated_s": 60.0},
        "grid": {"cold": 30.0, "warm": 1.5, "warm_rescore": 3.0, "cold_rc": 0, "warm_rc": 0, "warm_rescore_rc": 0},
    }


def _write_steps(work: Path, rows: list[tuple]) -> None:
    work.mkdir(parents=True, exist_ok=True)
    (work / "steps.tsv").write_text("".join("\t".join(map(str, r)) + "\n" for r in rows))


ALL_RAN = [
    ("env", 1, 0, 3.0, 60, "ran", ""),
    ("throughput_pil", 1, 0, 100.0, 240, "ran", ""),
    ("gpu_tests", 1, 0, 12.0, 90, "ran", ""),
    ("xdist_grid", 1, 0, 30.0, 120, "ran", ""),
]


def _junit(path: Path, cases: str) -> None:
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>')


def test_target_rows_match_hand_computed_ratios():
    rows = {r["id"]: r for r in ds.target_rows({"pil": _pil_run()})}
    assert list(rows) == TARGET_IDS
    # fp32 limit = the channels_last figure (1000), as throughput.py divides: 860/1000 = 0.86 >= 0.85
    assert rows["sustained/model_only[fp32,pil]"]["value"] == pytest.approx(0.86)
    assert rows["sustained/model_only[fp32,pil]"]["result"] == "PASS"
    # bf16 has no channels_last figure (CPU-style report): 1300/2000 = 0.65 < 0.70
    assert rows["sustained/model_only[bf16,pil]"]["value"] == pytest.approx(0.65)
    assert rows["sustained/model_only[bf16,pil]"]["result"] == "FAIL"
    # naive 60 s: 60/2 = 30 (>= 25), 60/0.4 = 150 (>= 150, exactly), 60/8 = 7.5 (< 25), 60/0.75 = 80 (< 150)
    assert rows["naive/task_cold[fp32,pil]"]["value"] == pytest.approx(30.0)
    assert rows["naive/task_cold[fp32,pil]"]["result"] == "PASS"
    assert rows["naive/task_warm[fp32,pil]"]["value"] == pytest.approx(150.0)
    assert rows["naive/task_warm[fp32,pil]"]["result"] == "PASS"
    assert rows["naive/task_cold[bf16,pil]"]["result"] == "FAIL"
    assert rows["naive/task_warm[bf16,pil]"]["value"] == pytest.approx(80.0)
    # at-most targets: 2.0 s cold (<= 2.0, exactly: PASS), 0.4 s warm (> 0.3: FAIL), 7.5 s as a process (<= 8)
    assert (rows["task_cold_s[fp32]"]["value"], rows["task_cold_s[fp32]"]["result"]) == (2.0, "PASS")
    assert (rows["task_warm_s[fp32]"]["value"], rows["task_warm_s[fp32]"]["result"]) == (0.4, "FAIL")
    assert rows["task_process_cold_s[fp32]"]["result"] == "PASS" and rows["task_process_cold_s[fp32]"]["at_most"]
    assert rows["task_cold_s[bf16]"]["result"] == "FAIL"  # 8 s
    # grid: 30 s cold > 12 s: FAIL; 30/1.5 = 20, exactly the target: PASS
    assert (rows["grid_cold_s"]["value"], rows["grid_cold_s"]["result"]) == (30.0, "FAIL")
    assert rows["grid_cold/grid_warm"]["value"] == pytest.approx(20.0)
    assert rows["grid_cold/grid_warm"]["result"] == "PASS"


def test_gpu_tests_run_as_files_and_names():
    ids = ["tests/a/test_x.py::test_one", "tests/a/test_x.py::TestK::test_two", "tests/b/test_gpu_module.py"]
    assert ds.pytest_selection(ids) == [
        "tests/a/test_x.py",
        "tests/b/test_gpu_module.py",
        "-k",
        "test_one or test_two or test_gpu_module.py",
    ]
    assert ds.pytest_selection([]) == []


def test_a_module_skipped_at_collection_does_not_stop_the_other_gpu_tests(tmp_path):
    """The files and -k, not node ids: pytest runs the others and reports the skipped module (exit 0, not 4)."""
    (tmp_path / "test_needs_lib.py").write_text(
        "import pytest\npytest.importorskip('no_such_library_here')\ndef test_gpu_thing(): pass\n"
    )
    (tmp_path / "test_other.py").write_text("def test_on_gpu(): pass\ndef test_plain(): pass\n")
    ids = ["test_needs_lib.py::test_gpu_thing", "test_other.py::test_on_gpu"]
    for args, code in ((ids, 4), (ds.pytest_selection(ids), 0)):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "-q", "-rs", "-p", "no:facebench"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == code, proc.stdout[-1500:]
    assert "1 passed, 1 skipped, 1 deselected" in proc.stdout


def test_summarize_exit_status_and_statuses(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    (out / "throughput_pil.json").write_text(json.dumps(_pil_run()))
    _junit(
        out / "gpu_tests.xml",
        '<testcase classname="tests.test_engine" name="test_gpu[fp32]" '
        'file="tests/test_engine.py" line="3" time="1.0"/>'
        '<testcase classname="tests.test_engine.TestX" name="test_y" '
        'file="tests/test_engine.py" line="9" time="0.5">'
        '<failure message="AssertionError: 1 != 2">trace</failure></testcase>',
    )
    _junit(
        out / "xdist_grid.xml",
        '<testcase classname="benchmarks.test_accuracy" name="test_accuracy[a-b]" '
        'file="benchmarks/test_accuracy.py" time="2"/>',
    )
    # every step ran: exit 0
    _write_steps(work, ALL_RAN)
    summary = ds.summarize(out, work, dry_run=False)
    assert summary["exit_status"] == 0 and summary["steps_ok"]
    assert [c["nodeid"] for c in summary["gpu_tests"]] == [
        "tests/test_engine.py::test_gpu[fp32]",
        "tests/test_engine.py::TestX::test_y",
    ]
    assert [c["outcome"] for c in summary["gpu_tests"]] == ["passed", "failed"]
    assert summary["xdist_grid"]["passed"] == 1
    assert json.loads((out / "summary.json").read_text())["targets_total"] == len(TARGET_IDS)
    table = ds.format_table(summary)
    assert "grid_cold/grid_warm" in table and "PASS" in table and "FAIL" in table and "≤ 8 s" in table

    # a required step that timed out, and one that was never recorded, break the check
    _write_steps(work, [ALL_RAN[0], ("throughput_pil", 1, 124, 240.0, 240, "ran", ""), ALL_RAN[2]])
    summary = ds.summarize(out, work, dry_run=False)
    assert summary["exit_status"] == 1
    assert summary["broken_steps"] == ["throughput_pil", "xdist_grid"]
    assert {s["name"]: s["status"] for s in summary["steps"]}["throughput_pil"] == "timeout"


def test_gpu_tests_skipped_on_the_gpu_machine_break_the_check(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    (out / "throughput_pil.json").write_text(json.dumps(_pil_run()))
    _junit(
        out / "gpu_tests.xml",
        '<testcase classname="tests.test_engine" name="test_gpu" file="tests/test_engine.py">'
        '<skipped type="pytest.skip" message="needs a CUDA GPU">x</skipped></testcase>',
    )
    _junit(out / "xdist_grid.xml", "")
    _write_steps(work, ALL_RAN)
    assert ds.summarize(out, work, dry_run=True)["exit_status"] == 0  # on the CPU a skip is expected
    summary = ds.summarize(out, work, dry_run=False)
    assert summary["exit_status"] == 1 and summary["broken_steps"] == ["gpu_tests"]
    # a module skipped for want of a library (dlib absent on the GPU machine) does not break it
    _junit(
        out / "gpu_tests.xml",
        '<testcase classname="tests.test_engine" name="test_gpu" file="tests/test_engine.py"/>'
        '<testcase classname="tests.zoo" name="test_zoo_dlib_torch" file="tests/zoo/test_zoo_dlib_torch.py">'
        '<skipped type="pytest.skip" message="could not import \'dlib\'">x</skipped></testcase>',
    )
    assert ds.summarize(out, work, dry_run=False)["exit_status"] == 0


def test_grid_that_fails_breaks_the_throughput_step(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    report = _pil_run()
    report["grid"]["warm_rc"] = 1
    (out / "throughput_pil.json").write_text(json.dumps(report))
    _write_steps(work, ALL_RAN[:2])
    step = ds.summarize(out, work, dry_run=False)["steps"][1]
    assert (step["status"], "warm" in step["why"]) == ("failed", True)


def _compile_run() -> dict:
    """A bench/compile_speed.py report: eager and reduce-overhead in fp32, a bf16 compile stopped by its budget."""
    return {
        "args": {"device": "cuda", "batch_size": 128},
        "results": [
            {
                "precision": "fp32",
                "mode": "off",
                "status": "ok",
                "img_s": 1000.0,
                "compiled": False,
                "max_abs_diff": {"avgpool": 0.0, "classifier.5": 0.0},
            },
            {
                "precision": "fp32",
                "mode": "reduce-overhead",
                "status": "ok",
                "img_s": 1250.0,
                "over_eager": 1.25,
                "compile_s": 41.5,
                "compiled": True,
                "compile_note": "",
                "max_abs_diff": {"avgpool": 2e-6, "classifier.5": 3e-5},
            },
            {"precision": "bf16", "mode": "reduce-overhead", "status": "timeout", "why": "stopped after 60 s"},
        ],
    }


def test_compile_figures_are_summarized_and_the_step_is_optional(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    (out / "throughput_pil.json").write_text(json.dumps(_pil_run()))
    _junit(out / "gpu_tests.xml", '<testcase classname="tests.t" name="test_gpu" file="tests/t.py"/>')
    _junit(out / "xdist_grid.xml", "")
    (out / "compile_speed.json").write_text(json.dumps(_compile_run()))
    _write_steps(work, [*ALL_RAN, ("compile_speed", 0, 0, 150.0, 180, "ran", "")])
    summary = ds.summarize(out, work, dry_run=False)
    assert summary["exit_status"] == 0
    rows = summary["figures"]["compile"]
    assert [(r["precision"], r["mode"], r["status"]) for r in rows] == [
        ("fp32", "off", "ok"),
        ("fp32", "reduce-overhead", "ok"),
        ("bf16", "reduce-overhead", "timeout"),
    ]
    assert rows[0]["max_abs_diff"] is None and rows[1]["max_abs_diff"] == 3e-5  # the largest layer's; none for eager
    table = ds.format_table(summary)
    assert "torch.compile, model-only" in table
    assert "reduce-overhead  ok            1250     1.25       41.5   3.0e-05" in table
    assert "stopped after 60 s" in table
    # it ran and wrote nothing: broken; too little time left to start it: skipped, the check is not broken
    (out / "compile_speed.json").unlink()
    assert ds.summarize(out, work, dry_run=False)["broken_steps"] == ["compile_speed"]
    _write_steps(work, [*ALL_RAN, ("compile_speed", 0, "", 0, 40, "skipped", "not started: 40 s left")])
    summary = ds.summarize(out, work, dry_run=False)
    assert summary["exit_status"] == 0 and "torch.compile" not in ds.format_table(summary)


def test_find_gpu_tests_reads_decorators(tmp_path):
    tests = tmp_path / "tests"
    (tests / "sub").mkdir(parents=True)
    (tests / "test_a.py").write_text(
        textwrap.dedent("""
        import pytest, torch
        GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="x")

        @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
        @pytest.mark.parametrize("p", [1, 2])
        def test_on_gpu(p): pass

        @pytest.mark.skipif(sys.platform == "win32", reason="posix only")
        def test_posix(): pass

        def test_plain():
            "@pytest.mark.skipif(not torch.cuda.is_available())"

        @pytest.mark.skipif(True, reason="no GPU here")
        class TestDevice:
            def test_one(self): pass

        class TestMixed:
            @pytest.mark.skipif(not HAS_CUDA, reason="r")
            def test_two(self): pass
            def test_three(self): pass
    """)
    )
    (tests / "sub" / "test_b.py").write_text(
        "import pytest\npytestmark = [pytest.mark.skipif(not CUDA, reason='')]\ndef test_x(): pass\n"
    )
    (tests / "sub" / "helper.py").write_text("@pytest.mark.skipif(cuda)\ndef test_not_a_test_file(): pass\n")
    assert ds.find_gpu_tests(tests) == [
        "tests/sub/test_b.py",
        "tests/test_a.py::test_on_gpu",
        "tests/test_a.py::TestDevice::test_one",
        "tests/test_a.py::TestMixed::test_two",
    ]


@pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and coreutils' timeout"
)
def test_dry_run_end_to_end_slow(tmp_path):
    """SLOW: the whole check on the CPU at tiny sizes (about two minutes on two idle cores, one of them the cold
    torch.compile of the tiny VGG16)."""
    out = tmp_path / "out"
    # not the outer run's PYTEST_* variables (xdist worker ids, PYTEST_ADDOPTS): the check's pytest runs are its own
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env |= {"OUT": str(out), "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert {
        "dry_run",
        "env",
        "steps",
        "figures",
        "targets",
        "gpu_tests",
        "xdist_grid",
        "steps_ok",
        "broken_steps",
        "targets_met",
        "targets_total",
        "exit_status",
    } <= set(summary)
    assert summary["dry_run"] is True and summary["steps_ok"] and summary["exit_status"] == 0
    assert [s["name"] for s in summary["steps"]] == [
        "env",
        "throughput_pil",
        "gpu_tests",
        "xdist_grid",
        "compile_speed",
    ]
    assert all(s["status"] == "ok" for s in summary["steps"])
    assert [r["id"] for r in summary["targets"]] == TARGET_IDS
    assert all(r["result"] in ("PASS", "FAIL") for r in summary["targets"]), "a figure is missing in the dry run"
    assert summary["gpu_tests"] and all(c["outcome"] == "skipped" for c in summary["gpu_tests"])
    assert any("test_gpu_matches_cpu" in c["nodeid"] for c in summary["gpu_tests"])
    assert summary["xdist_grid"]["passed"] >= 1 and summary["xdist_grid"]["failed"] == 0
    assert summary["figures"]["model_only_img_s"]["fp32"]["plain"] > 0
    compiled = summary["figures"]["compile"]
    assert [(r["precision"], r["mode"], r["status"]) for r in compiled] == [
        ("fp32", "off", "ok"),
        ("fp32", "default", "ok"),
    ]
    assert compiled[1]["compiled"] is True and compiled[1]["img_s"] > 0 and compiled[1]["max_abs_diff"] < 1e-3
    assert summary["env"]["cuda_available"] is False
    for row in summary["targets"]:
        assert f"{row['id']}" in proc.stdout and row["result"] in proc.stdout
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(ds.OUTPUT_FILES) and len(files) <= 8
    assert list(tmp_path.glob("device-check-work.*")) == []  # the work dir is removed
