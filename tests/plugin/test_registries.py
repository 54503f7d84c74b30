"""One registry mechanism (`registries.Registry`) behind model families, task types and metric specs: values are
lazy ('module:attr' imported only when loaded), entry points are merged in, a name registered twice differently
is an error naming both sides (an entry point named like a built-in included, raised where a grid uses the
name), and an unknown name gets a did-you-mean."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_facebench.errors import ConfigError, ModelError
from pytest_facebench.grid import registry
from pytest_facebench.grid.config import load_grid
from pytest_facebench.registries import Registry


def write_module(root: Path, name: str, body: str = "") -> None:
    (root / f"{name}.py").write_text(textwrap.dedent(body) or "class Thing:\n    pass\n", encoding="utf-8")


def install_distribution(root: Path, name: str, entry_points: dict[str, dict[str, str]]) -> None:
    """A distribution's metadata (as pip leaves it in site-packages) under `root`: what `entry_points()` reads."""
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n", encoding="utf-8")
    sections = [
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in points.items())
        for group, points in entry_points.items()
    ]
    (info / "entry_points.txt").write_text("\n".join(sections), encoding="utf-8")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path, and copies of the family and task type registries that read its entry points."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    families, types = registry.FAMILIES.copy(), registry.TASK_TYPES.copy()
    families.refresh()
    types.refresh()
    monkeypatch.setattr(registry, "FAMILIES", families)
    monkeypatch.setattr(registry, "TASK_TYPES", types)
    return root


# --- lazy values --------------------------------------------------------------------------------------
def test_a_reference_is_imported_only_when_loaded(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "lazy_family_mod", "class Net:\n    built = True\n")
    reg: Registry[type] = Registry("model family")
    reg.register("net", "lazy_family_mod:Net", defaults={"width": 2})
    assert "net" in reg and reg.names() == ["net"] and len(reg) == 1
    entry = reg.entry("net")
    assert (entry.value, dict(entry.defaults), entry.origin) == ("lazy_family_mod:Net", {"width": 2}, __name__)
    assert "lazy_family_mod" not in sys.modules  # registered, listed and looked up: nothing imported
    assert reg.load("net").built is True
    assert "lazy_family_mod" in sys.modules


def test_the_package_registries_import_nothing_until_a_class_is_needed():
    code = (
        "import sys\n"
        "from pytest_facebench import registry\n"
        "from pytest_facebench.outputs.metrics import METRICS\n"
        "registry.resolve_family('vgg16'), registry.resolve_family('iresnet50'), registry.task_type_names()\n"
        "registry.TASK_TYPES.entry('rsa'), registry.model_families()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pytest_facebench.tasks', 'pytest_facebench.zoo.',"
        " 'torch', 'pandas'))))\n"
        "print(registry.task_class('rsa').__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = out.stdout.splitlines()
    assert before == "[]", out.stdout + out.stderr
    assert after == "pytest_facebench.tasks.rsa"


# --- registering, collisions -------------------------------------------------------------------------------
def test_a_decorator_registers_the_class_under_its_name():
    reg: Registry[type] = Registry("widget")

    @reg.register("gadget")
    class Gadget:
        pass

    assert reg.load("gadget") is Gadget
    assert reg.entry("gadget").origin == f"{__name__}.{Gadget.__qualname__}"
    assert not reg.entry("gadget").lazy


def test_a_name_registered_twice_differently_names_both_sides():
    reg: Registry[type] = Registry("model family", clash_hint="rename one of them")
    reg.register("net", "first_pkg:Net", origin="first_pkg")
    reg.register("net", "first_pkg:Net", origin="second_pkg")  # the same value again: fine, the first stays
    assert reg.entry("net").origin == "first_pkg"
    with pytest.raises(ConfigError) as caught:
        reg.register("net", "second_pkg:Net", origin="second_pkg")
    assert str(caught.value) == (
        "model family 'net' is declared twice, differently: 'first_pkg:Net' by first_pkg and 'second_pkg:Net' by "
        "second_pkg; rename one of them"
    )
    with pytest.raises(ConfigError, match=r"with \{'arch': 'b'\} by second_pkg"):  # defaults are part of it
        reg.register("net", "first_pkg:Net", origin="second_pkg", defaults={"arch": "b"})
    reg.register("net", "first_pkg:Other", origin="first_pkg")  # the same origin again (a reload) replaces
    assert reg.entry("net").value == "first_pkg:Other"


def test_an_unknown_name_lists_the_known_ones_with_a_did_you_mean():
    reg: Registry[type] = Registry("widget", error=ModelError, expected="one of {names}")
    for name in ("gadget", "gizmo"):
        reg.register(name, f"mod:{name.title()}")
    with pytest.raises(ModelError, match=r"^unknown widget 'gadgte'; one of gadget, gizmo\. Did you mean 'gadget'\?$"):
        reg.load("gadgte")
    with pytest.raises(ModelError, match=r"^unknown widget 'zzz'; one of gadget, gizmo\.$"):
        reg.entry("zzz")
    assert reg.get("zzz", "none") == "none"
    with pytest.raises(ConfigError, match="Did you mean 'vgg16'"):
        registry.resolve_family("vgg61")


# --- entry points ---------------------------------------------------------------------------------------------
def test_entry_points_are_merged_without_importing_them(site):
    install_distribution(
        site,
        "facebench-widgets",
        {"pytest_facebench.models": {"brightness": "widgets_pkg:Brightness"}, "pytest_facebench.tasks": {}},
    )
    write_module(site, "widgets_pkg", "class Brightness:\n    pass\n")
    assert registry.resolve_family("brightness") == ("widgets_pkg:Brightness", {})
    assert "brightness" in registry.model_families() and "vgg16" in registry.model_families()
    entry = registry.FAMILIES.entry("brightness")
    assert entry.origin == "the entry point of distribution facebench-widgets 0.1 (group pytest_facebench.models)"
    assert "widgets_pkg" not in sys.modules


def test_an_entry_point_named_like_a_built_in_is_an_error_naming_both_where_it_is_used(site):
    install_distribution(
        site,
        "facebench-clash",
        {
            "pytest_facebench.models": {"vgg16": "clash_pkg:Net", "clashless": "clash_pkg:Other"},
            "pytest_facebench.tasks": {"accuracy": "clash_pkg:MyAccuracy"},
        },
    )
    with pytest.raises(ConfigError) as caught:
        registry.resolve_family("vgg16")
    assert str(caught.value) == (
        "model family 'vgg16' is declared twice, differently: 'pytest_facebench.zoo.vgg16:Vgg16' by "
        "pytest_facebench.zoo and 'clash_pkg:Net' by the entry point of distribution facebench-clash 0.1 "
        "(group pytest_facebench.models); rename one of them, or name the class itself as 'module:Class'"
    )
    with pytest.raises(ConfigError, match=r"task type 'accuracy' is declared twice, differently: .*facebench-clash"):
        registry.task_class("accuracy")
    # other names still work, and the built-in classes load (the clash is reported where a grid uses the name)
    assert registry.resolve_family("clashless") == ("clash_pkg:Other", {})
    assert registry.resolve_family("pixels")[0] == "pytest_facebench.zoo.pixels:Pixels"
    assert registry.builtin_task_types()["accuracy"].type == "accuracy"
    assert "vgg16" in registry.model_families() and "accuracy" in registry.task_type_names()


def test_two_distributions_claiming_one_name_is_an_error_naming_both(site):
    for dist, module in (("facebench-one", "one_pkg"), ("facebench-two", "two_pkg")):
        install_distribution(site, dist, {"pytest_facebench.models": {"twin": f"{module}:Net"}})
    with pytest.raises(ConfigError, match=r"model family 'twin' is declared twice") as caught:
        registry.resolve_family("twin")
    assert "facebench-one" in str(caught.value) and "facebench-two" in str(caught.value)


def test_a_grid_naming_a_clashing_type_or_family_reports_it_on_its_entry(site, tmp_path):
    install_distribution(
        site,
        "facebench-clash",
        {
            "pytest_facebench.models": {"pixels": "clash_pkg:Net"},
            "pytest_facebench.tasks": {"accuracy": "clash_pkg:MyAccuracy"},
        },
    )
    (tmp_path / "pairs.csv").write_text("img1,img2,label\na.png,b.png,1\n", encoding="utf-8")
    grid = tmp_path / "facebench.toml"
    grid.write_text(
        '[[models]]\nname = "p"\nfactory = "pixels"\n\n[[models]]\nname = "v"\nfactory = "vgg16"\n\n'
        '[[tasks]]\nname = "verif"\ntype = "accuracy"\npairs = "pairs.csv"\nimages = "."\n\n'
        '[[tasks]]\nname = "sim"\ntype = "correlation"\npairs = "pairs.csv"\nimages = "."\n',
        encoding="utf-8",
    )
    loaded = load_grid(grid)
    models = {m.name: m.error for m in loaded.models}
    tasks = {t.name: t.error for t in loaded.tasks}
    assert models["v"] is None and tasks["sim"] is None
    assert models["p"] is not None and "model family 'pixels' is declared twice" in models["p"]
    assert "facebench-clash" in models["p"] and "pytest_facebench.zoo" in models["p"]
    assert tasks["verif"] is not None and "task type 'accuracy' is declared twice" in tasks["verif"]
    assert "'pytest_facebench.tasks.verification:AccuracyTask' by pytest_facebench.grid.registry" in tasks["verif"]
