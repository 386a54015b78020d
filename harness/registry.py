"""Register tasks, methods and metrics once: one decorator fills a dict and stores the config schema.

A plug-in file writes ``@register_method("ddim", DDIMConfig)`` above its class and nothing else:
the name is spelled once, the dataclass is the schema Hydra validates overrides against
(``method=ddim method.steps=abc`` fails at compose time, naming the field).

Where plug-ins come from (``load_plugins``):
- this repository's workloads: every package ``tasks/<workload>/`` (its ``__init__`` imports the
  modules that register tasks and metrics) and every module under ``methods/<workload>/`` (one
  file per method); a new workload is two new folders, no edit here;
- installed packages: every entry point of the group ``efficiency_harness.plugins`` names a module
  to import, e.g. in the plug-in's pyproject.toml
  ``[project.entry-points."efficiency_harness.plugins"] my_pkg = "my_pkg.harness_plugin"``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from typing import Any, Callable, TypeVar

from hydra.core.config_store import ConfigStore

from harness.plugin import PluginConfig

T = TypeVar("T")
ENTRY_POINT_GROUP = "efficiency_harness.plugins"
BUILTIN = ("tasks", "methods")  # top-level packages holding one sub-package per workload

METHODS: dict[str, type] = {}
TASKS: dict[str, type] = {}
_GROUPS = {"method": METHODS, "task": TASKS}
_loaded = False


def _register(group: str, name: str, config: type[PluginConfig]) -> Callable[[type[T]], type[T]]:
    table = _GROUPS[group]

    def deco(cls: type[T]) -> type[T]:
        if name in table and table[name] is not cls:
            raise ValueError(f"{group} {name!r} is registered twice ({table[name]} and {cls})")
        cls.name = name  # type: ignore[attr-defined]
        cls.Config = config  # type: ignore[attr-defined]
        table[name] = cls
        ConfigStore.instance().store(group=group, name=name, node=config(name=name))
        return cls

    return deco


def register_method(name: str, config: type[PluginConfig]) -> Callable[[type[T]], type[T]]:
    return _register("method", name, config)


def register_task(name: str, config: type[PluginConfig]) -> Callable[[type[T]], type[T]]:
    return _register("task", name, config)


def _import_tree(package: str) -> None:
    """Import ``package`` and every module below it (names starting with ``_`` excepted)."""
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            importlib.import_module(info.name)


def load_plugins() -> None:
    """Import every workload package and every installed plug-in once, so their decorators run."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for top in BUILTIN:
        pkg = importlib.import_module(top)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.ispkg or info.name.startswith("_") or info.name == "zoo":
                continue
            if top == "tasks":  # the workload's __init__ imports what registers (never a training script)
                importlib.import_module(f"{top}.{info.name}")
            else:
                _import_tree(f"{top}.{info.name}")
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:
            raise ImportError(f"plug-in entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r} failed "
                              f"to import: {type(exc).__name__}: {exc}") from exc


def lookup(group: str, name: str) -> type:
    load_plugins()  # idempotent; Python API users need not call it first
    table = _GROUPS[group]
    if name not in table:
        raise KeyError(f"unknown {group} {name!r}; registered: {', '.join(sorted(table)) or '(none)'}")
    return table[name]


def build_config(group: str, values: dict[str, Any]) -> Any:
    """Validate a plain dict against the registered dataclass of ``values['name']``."""
    from omegaconf import OmegaConf

    cls = lookup(group, values.get("name", ""))
    merged = OmegaConf.merge(OmegaConf.structured(cls.Config(name=cls.name)), values)
    return OmegaConf.to_object(merged)
