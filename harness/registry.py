"""Register tasks and methods once: one decorator fills a dict and stores the config schema.

A plug-in file writes ``@register_method("ddim", DDIMConfig)`` above its class and nothing else:
the name is spelled once, the dataclass is the schema Hydra validates overrides against
(``method=ddim method.steps=abc`` fails at compose time, naming the field).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from hydra.core.config_store import ConfigStore

T = TypeVar("T")


@dataclass
class PluginConfig:
    """Base of every method and task config: ``name`` selects the registered class."""

    name: str = ""


METHODS: dict[str, type] = {}
TASKS: dict[str, type] = {}
_GROUPS = {"method": METHODS, "task": TASKS}


def _register(group: str, name: str, config: type[PluginConfig]) -> Callable[[type[T]], type[T]]:
    table = _GROUPS[group]

    def deco(cls: type[T]) -> type[T]:
        if name in table:
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


def load_plugins() -> None:
    """Import every module under ``methods/`` and ``tasks/`` so that their decorators run."""
    for package in ("tasks", "methods"):
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_") and info.name != "zoo":
                importlib.import_module(f"{package}.{info.name}")


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
