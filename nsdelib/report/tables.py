"""Settings as a reader reads them: one row per setting, each value written out in full (``L2: 0.5, 2, 8``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def readable(value: Any) -> str:
    """A setting's value as text: numbers with ``:g``, sequences comma-separated, mappings as ``key: value``."""
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {readable(item)}" for key, item in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(readable(item) for item in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def flattened(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections as ``section.setting`` keys. A mapping of sequences (an ε grid per norm) is one setting."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and not all(isinstance(v, list | tuple) for v in value.values()):
            flat |= flattened(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def settings_table(settings: Mapping[str, Any], **columns: Mapping[str, Any]) -> pd.DataFrame:
    """One row per setting and a column ``value``, or given ``columns`` (name → settings) one column per name."""
    named = columns or {"value": settings}
    flat = {name: flattened(values) for name, values in named.items()}
    keys = list(dict.fromkeys(key for values in flat.values() for key in values))
    return pd.DataFrame({name: [readable(values[key]) if key in values else "–" for key in keys]
                         for name, values in flat.items()}, index=pd.Index(keys, name="setting"))
