"""Typed configuration from YAML, the machinery every trainer's config uses (DMENet's :mod:`dmenet.config`,
Galetto & Deng's :mod:`dmenet.galetto.train`, Distill-DBDGAN's :mod:`dmenet.distill.config`).

A config is a tree of dataclasses. :func:`dataclass_from_dict` builds one from a nested dict, converting each value to
its annotated type (:func:`_coerce`: bool, int, float, str, tuples, optional types; YAML 1.1's string ``"1e-4"``
read as a float); unknown keys and values of the wrong type raise :class:`ConfigError`, whose message names the key.
:func:`split_override` and :func:`set_override` apply one ``--set a.b=value`` item to such a dict;
:class:`UniqueKeyLoader` reads YAML refusing a key given twice; :func:`config_to_dict` turns a config back into plain
data; :func:`flat_keys` and :func:`differing_keys` compare two configs key by key (the trainers' ``--resume``
checks). The checks :func:`require_positive`, :func:`require_non_negative`, :func:`check_adam` and
:func:`check_choice` raise a ConfigError naming ``section.key``. Reading a file with defaults and overrides into a
config is :func:`dmenet.config.load_config` (``root=`` the config dataclass; DMENet's by default).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Callable, Iterable

import yaml

from syndof.choices import Choice


class ConfigError(ValueError):
    """A bad config file or override; the message names the key."""


def require_positive(cfg: Any, section: str, names: Iterable[str]) -> None:
    """Raise ConfigError naming ``section.name`` for the first of ``names`` whose value in ``cfg`` is < 1."""
    for name in names:
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{section}.{name} must be >= 1, got {getattr(cfg, name)}")


def require_non_negative(cfg: Any, section: str, names: Iterable[str]) -> None:
    """Raise ConfigError naming ``section.name`` for the first of ``names`` whose value in ``cfg`` is < 0 (keys whose
    0 has a meaning: none, never, in the calling thread)."""
    for name in names:
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{section}.{name} must be >= 0, got {getattr(cfg, name)}")


def check_adam(cfg: Any, section: str, lrs: Iterable[str] = ("lr",)) -> None:
    """Raise ConfigError naming ``section.name`` for a learning rate of ``lrs`` that is not a finite number >= 0,
    a ``beta1`` / ``beta2`` outside [0, 1), or an ``eps`` <= 0 (when ``cfg`` has one): Adam settings in every
    training config (DMENet, Distill-DBDGAN, Galetto & Deng)."""
    for name in lrs:
        value = getattr(cfg, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"{section}.{name} must be a finite learning rate >= 0, got {value}")
    for name in ("beta1", "beta2"):
        if not 0.0 <= getattr(cfg, name) < 1.0:
            raise ConfigError(f"{section}.{name} must be in [0, 1), got {getattr(cfg, name)}")
    if hasattr(cfg, "eps") and not cfg.eps > 0:
        raise ConfigError(f"{section}.eps must be > 0, got {cfg.eps}")


def check_choice(cfg: Any, section: str, name: str, choices: Iterable[str]) -> None:
    """Raise ConfigError naming ``section.name`` unless its value is one of ``choices``."""
    choices = tuple(choices)
    if getattr(cfg, name) not in choices:
        raise ConfigError(f"{section}.{name} must be one of {choices}, got {getattr(cfg, name)!r}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Convert ``value`` (from YAML or an override string) to the annotated type ``tp`` or raise ConfigError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "~")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise ConfigError(f"{key}: expected a bool (true/false), got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an int, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected an int, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a float, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML 1.1 reads "1e-4" as a string
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a float, got {value!r}")
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise ConfigError(f"{key}: unsupported config type {_type_name(tp)}")
        if isinstance(value, str):  # an override: comma-separated values, optionally in brackets
            value = [v for v in value.strip().strip("[]()").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value))
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported config type {_type_name(tp)}")


def dataclass_from_dict(cls: type, data: dict[str, Any], prefix: str) -> Any:
    """The config dataclass ``cls`` from a nested dict (YAML/JSON): each value converted to its annotated type, a
    section (a dataclass field) built the same way (None = its defaults), missing keys at their defaults. ``prefix``
    (``""`` at the top, ``"section."`` below) makes the keys the messages name. ConfigError for an unknown key, a value
    of the wrong type or one the dataclass refuses (its ValueError / TypeError, prefixed with the section)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping of its keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = prefix or "the top level"
        raise ConfigError(f"unknown config key(s) {[f'{prefix}{k}' for k in unknown]} in {where}; "
                          f"valid keys: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(tp):  # an empty section (None) takes the defaults; `model: false` is refused
            kwargs[name] = dataclass_from_dict(tp, {} if value is None else value, key + ".")
        else:
            kwargs[name] = _coerce(key, value, tp)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {exc}") from exc


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """ExperimentConfig (or any config dataclass) → nested plain dict (YAML/JSON-safe: an option-set member given in
    code, e.g. ``dataclasses.replace(cfg.train, stage=Stage.JOINT)``, becomes its string, which YAML's safe dumper
    needs)."""
    return dataclasses.asdict(cfg, dict_factory=lambda items: {k: _plain(v) for k, v in items})


def _plain(value: Any) -> Any:
    """``value`` with :class:`~syndof.choices.Choice` members (also inside lists and tuples) as their strings."""
    if isinstance(value, Choice):
        return value.value
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def set_override(data: dict[str, Any], dotted: str, raw: str, root: type) -> None:
    """Set the override ``dotted`` = ``raw`` (``a.b``, the raw value as given; :func:`split_override`) in the nested
    dict ``data`` in place, the value parsed as a YAML scalar (a list where the key takes a tuple), after checking
    each part of the key against the config dataclass ``root`` and its sections. ConfigError for an unknown key, a
    key that names a section, or a mapping value."""
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"bad override key {dotted!r} (expected section.key=value)")
    node: Any = data
    cls: Any = root
    for i, part in enumerate(parts):
        names = {f.name for f in dataclasses.fields(cls)}
        if part not in names:
            where = ".".join(parts[:i]) or "the top level"
            raise ConfigError(f"unknown config key {dotted!r}: {part!r} is not in {where}; valid keys: {sorted(names)}")
        tp = typing.get_type_hints(cls)[part]
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(tp):
                raise ConfigError(f"override {dotted!r} names a section; set one of its keys, e.g. {dotted}.<key>=…")
            node[part] = yaml.safe_load(raw) if raw.strip() else ""
            takes_list = any(typing.get_origin(t) is tuple for t in (tp, *typing.get_args(tp)))
            if isinstance(node[part], dict) or (isinstance(node[part], list) and not takes_list):
                raise ConfigError(f"{dotted}: expected a scalar value, got {raw!r}")
            return
        if not dataclasses.is_dataclass(tp):
            raise ConfigError(f"unknown config key {dotted!r}: {'.'.join(parts[: i + 1])} is not a section")
        if node.get(part) is None:
            node[part] = {}
        elif not isinstance(node[part], dict):  # was replaced by {}: `model: mobilenet_v2` trained the defaults
            raise ConfigError(f"{'.'.join(parts[: i + 1])}: expected a mapping of its keys, got {node[part]!r}")
        node = node[part]
        cls = tp


def split_override(item: str) -> tuple[str, str]:
    """``("a.b", "value")`` of a ``--set`` item ``a.b=value`` (the key stripped, the raw value as given: split at the
    first ``=``). ConfigError when there is no ``=``."""
    if "=" not in item:
        raise ConfigError(f"bad override {item!r}: expected key=value, e.g. train.steps=100")
    key, raw = item.split("=", 1)
    return key.strip(), raw


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping: PyYAML keeps the last one silently, so a
    second ``model:`` section replaced the whole first one (its encoder and width fell back to the defaults)."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """PyYAML hook: remember each mapping's own key pairs before merges flatten it, then flatten."""
        # PyYAML flattens a merge source in place when another mapping merges it, possibly before the source itself
        # is constructed: keep each mapping's own pairs, the ones a duplicate is looked for in
        self._own_pairs = getattr(self, "_own_pairs", {})
        self._own_pairs.setdefault(id(node), (node, list(node.value)))
        super().flatten_mapping(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """PyYAML hook: the mapping, with a ConstructorError naming the line when a key is given twice (``<<`` merges
        may override)."""
        seen: dict[Any, yaml.Node] = {}
        pairs = getattr(self, "_own_pairs", {}).get(id(node), (node, node.value))[1]
        for key_node, _ in pairs:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *anchor``: PyYAML merges it (later keys win)
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: construct_mapping says so
                continue
            if first is not key_node:  # another node with an equal key (on another line or the same one)
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first on line {first.start_mark.line + 1}): give each "
                    "key once", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def flat_keys(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config mapping as ``{"section.key": value}`` (the spelling of ``--set``), for comparing two configs
    key by key (the trainers' ``--resume`` checks)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat_keys(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differing_keys(before: dict[str, Any], now: dict[str, Any], free: Iterable[str] = (),
                   same: Callable[[str, Any, Any], bool] | None = None) -> list[str]:
    """The keys of two flat config mappings (:func:`flat_keys`) whose values differ, sorted, ``free`` keys not
    compared; ``same(key, a, b)`` decides equality (default ``a == b``). The trainers' ``--resume`` checks."""
    free = set(free)
    return sorted(k for k in before.keys() | now.keys() if k not in free
                  and not (same(k, before.get(k), now.get(k)) if same else before.get(k) == now.get(k)))
