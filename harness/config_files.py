"""Where configuration files are found: the copy shipped inside the package, and a user folder.

The package ships ``harness/configs/`` (presets/, judges.yaml, accelerate/, seft/ templates,
published.yaml, wall_times.yaml), found through importlib.resources, so an installed wheel finds
them wherever it is run from. ``$HARNESS_CONFIG_DIR`` names a user folder with the same layout: a
file there adds to the packaged ones, and a file with the same relative path wins over the packaged
one (a user preset ``smoke.yaml`` replaces the packaged smoke; ``judges.yaml``, ``published.yaml``
and ``wall_times.yaml`` are merged entry by entry by their readers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from harness.errors import HarnessError

USER_DIR_ENV = "HARNESS_CONFIG_DIR"


@dataclass(frozen=True)
class ConfigFile:
    """A configuration file and where it comes from ("user": $HARNESS_CONFIG_DIR, "packaged": the wheel)."""

    path: Path
    origin: str
    overrides_packaged: bool = False


def packaged_dir() -> Path:
    """Return the folder of configuration files shipped in the package (harness/configs)."""
    return Path(str(resources.files("harness").joinpath("configs")))


def user_dir() -> Path | None:
    """Return $HARNESS_CONFIG_DIR (None when unset); HarnessError when it names no folder."""
    raw = os.environ.get(USER_DIR_ENV)
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise HarnessError(f"{USER_DIR_ENV}={raw}: no such folder (it holds presets/, judges.yaml, accelerate/, seft/, "
                           "published.yaml and wall_times.yaml that add to or override the packaged ones)")
    return path


def find_config(relative: str) -> ConfigFile | None:
    """Return the file at ``relative`` (e.g. "presets/smoke.yaml"): the user's copy if there is one, else the
    packaged one; None when neither exists."""
    packaged = packaged_dir() / relative
    user = user_dir()
    if user is not None and (user / relative).is_file():
        return ConfigFile(user / relative, "user", overrides_packaged=packaged.is_file())
    return ConfigFile(packaged, "packaged") if packaged.is_file() else None


def config_layers(relative: str) -> list[Path]:
    """Return every existing copy of ``relative``, packaged first and the user's last (for files merged entry
    by entry, later ones winning)."""
    user = user_dir()
    candidates = [packaged_dir() / relative] + ([user / relative] if user is not None else [])
    return [path for path in candidates if path.is_file()]


def list_configs(folder: str, suffix: str) -> dict[str, ConfigFile]:
    """Return {name without suffix: file} for the files ending in ``suffix`` in ``folder`` (e.g. "presets",
    ".yaml"), user files winning over packaged ones of the same name; sorted by name."""
    found = {path.name.removesuffix(suffix): ConfigFile(path, "packaged")
             for path in (packaged_dir() / folder).glob(f"*{suffix}")}
    user = user_dir()
    if user is not None:
        for path in (user / folder).glob(f"*{suffix}"):
            name = path.name.removesuffix(suffix)
            found[name] = ConfigFile(path, "user", overrides_packaged=name in found)
    return dict(sorted(found.items()))


def resolve_config_path(raw: str, folder: str, setting: str) -> Path:
    """Return the file a setting names: an existing path (absolute, or relative to the working folder), else a
    file of ``folder`` in the configuration folders (user first), by name with or without ".yaml";
    HarnessError naming ``setting`` and what is there."""
    path = Path(raw).expanduser()
    if path.is_file():
        return path.resolve()
    name = Path(raw).name
    for candidate in (name, f"{name}.yaml"):
        found = find_config(f"{folder}/{candidate}")
        if found is not None and path.parent in (Path("."), Path(folder), Path("configs") / folder):
            return found.path
    known = ", ".join(list_configs(folder, ".yaml")) or "none"
    raise HarnessError(f"{setting}: no file {raw!r}; give a path or one of the {folder} configs: {known}")
