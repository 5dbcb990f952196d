"""The base of every typed config section: immutable, unknown keys rejected, one clear error."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import config_error


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
