"""The base of every typed config section: immutable, unknown keys rejected, one clear error."""

from __future__ import annotations

import math
from typing import Annotated, Any, Self, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from .errors import ConfigError, config_error


def _increasing_positive(values: tuple[float, ...]) -> tuple[float, ...]:
    if any(not (0 < value < math.inf) for value in values):
        raise ValueError(f"every value must be finite and > 0 (a sweep's clean point 0 is implied), got {list(values)}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"the values must be strictly increasing, got {list(values)}")
    return values


def _at_most_one(values: tuple[float, ...]) -> tuple[float, ...]:
    if values and values[-1] > 1:
        raise ValueError(f"the values must lie in (0, 1], got {list(values)}")
    return values


#: A sweep's values or a grid: finite, positive, strictly increasing (give ``min_length=1`` where it may not be empty).
IncreasingPositive = Annotated[tuple[float, ...], AfterValidator(_increasing_positive)]
#: Strictly increasing fractions or levels in (0, 1].
IncreasingFractions = Annotated[IncreasingPositive, AfterValidator(_at_most_one)]


def one_of(value: str, choices: Any, what: str) -> Any:
    """``value`` if the ``Literal`` type ``choices`` allows it, else one ConfigError naming what is allowed."""
    allowed = get_args(choices)
    if value not in allowed:
        raise ConfigError(f"unknown {what} {value!r}; allowed {what}s: {', '.join(allowed)}")
    return value


class Section(BaseModel):
    """A validated, frozen config. ``Section.build(**values)`` raises ConfigError, never a raw pydantic error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def build(cls, **values: Any) -> Self:
        """Validate ``values`` into this section, raising one ConfigError that names the bad field."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise config_error(cls.__name__, exc, list(cls.model_fields)) from exc

    def replace(self, **changes: Any) -> Self:
        """A validated copy with some fields changed (``model_copy`` would skip validation)."""
        return self.build(**{**self.model_dump(), **changes})
