"""The one registry style: names written once, lazy discovery, failing plug-ins named, entry points."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.registry import Registry


def _package(root: Path, name: str, modules: dict[str, str]) -> None:
    """Write a package ``name`` under ``root`` with the given module sources."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def plugin_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith(("reg_", "ep_"))]:
        del sys.modules[name]


def test_bare_registration_uses_the_name_attribute_and_strings_name_the_rest() -> None:
    things: Registry = Registry("thing", ())

    @things.register
    class Alpha:
        name = "alpha"

    @things.register("beta")
    def build_beta() -> str:
        return "b"

    assert things.names() == ["alpha", "beta"]
    assert things.get("alpha") is Alpha and things.get("beta") is build_beta
    assert "alpha" in things and "gamma" not in things


def test_the_name_is_written_once() -> None:
    things: Registry = Registry("thing", ())
    with pytest.raises(HarnessError, match="register it bare"):
        @things.register("alpha")
        class Alpha:
            name = "alpha"
    with pytest.raises(HarnessError, match="no name attribute"):
        things.register(object())


def test_two_objects_under_one_name_are_an_error() -> None:
    things: Registry = Registry("thing", ())
    things.register("x")(len)
    with pytest.raises(HarnessError, match="registered twice"):
        things.register("x")(abs)


def test_unknown_names_list_the_known_ones() -> None:
    things: Registry = Registry("thing", ())
    things.register("x")(len)
    with pytest.raises(HarnessError, match=r"unknown thing 'y'; known: x"):
        things.get("y")


def test_discovery_imports_the_package_modules_on_first_lookup(plugin_root: Path) -> None:
    things: Registry = Registry("thing", "reg_ok")
    sys.modules["reg_registry_under_test"] = type(sys)("reg_registry_under_test")
    sys.modules["reg_registry_under_test"].THINGS = things
    _package(plugin_root, "reg_ok", {"one": """
        from reg_registry_under_test import THINGS

        @THINGS.register
        class One:
            name = "one"
        """})
    assert "reg_ok.one" not in sys.modules  # nothing imported before the first lookup
    assert things.names() == ["one"]


def test_a_plugin_that_fails_to_import_is_named_on_every_lookup(plugin_root: Path) -> None:
    things: Registry = Registry("thing", "reg_broken")
    _package(plugin_root, "reg_broken", {"good": "", "bad": "import a_module_that_does_not_exist_here\n"})
    for _ in range(2):  # not an empty registry the second time
        with pytest.raises(HarnessError, match=r"thing plug-in reg_broken.bad failed to import: ModuleNotFoundError"):
            things.names()


def test_entry_points_bring_plugins_from_outside_the_repository(plugin_root: Path) -> None:
    things: Registry = Registry("thing", (), entry_points="seft_harness_test.things")
    sys.modules["reg_registry_under_test"] = type(sys)("reg_registry_under_test")
    sys.modules["reg_registry_under_test"].THINGS = things
    _package(plugin_root, "ep_outside", {"plugin": """
        from reg_registry_under_test import THINGS

        @THINGS.register("outside")
        def build() -> str:
            return "from an installed distribution"
        """})
    dist = plugin_root / "ep_outside-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-outside\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[seft_harness_test.things]\noutside = ep_outside.plugin\n")
    assert things.get("outside")() == "from an installed distribution"
