"""One exception type per kind of user-facing failure, each with a single readable message."""

from __future__ import annotations

from pydantic import ValidationError


class ConfigError(ValueError):
    """A parameter or configuration value is invalid; the message names it and what is allowed."""


class ArtifactError(RuntimeError):
    """An artifact on disk cannot be used (missing, corrupt or stale)."""


class ArtifactMissing(ArtifactError):
    """No artifact has been written for this kind and config."""


class ArtifactCorrupt(ArtifactError):
    """The artifact's bytes do not match the checksum recorded when it was written."""


class ArtifactStale(ArtifactError):
    """The artifact was written for another config or another library version."""


def _describe(err: dict) -> str:
    """One line for one pydantic error: which parameter, what was given, what is allowed."""
    loc = ".".join(str(part) for part in err["loc"]) or "<root>"
    if err["type"] == "extra_forbidden":
        return f"unknown parameter '{loc}'"
    given = err.get("input")
    return f"parameter '{loc}' = {given!r}: {err['msg']}"


def config_error(what: str, exc: ValidationError, allowed_fields: list[str] | None = None) -> ConfigError:
    """Turn a pydantic ValidationError into one ConfigError whose message a reader can act on."""
    lines = [_describe(e) for e in exc.errors()]
    message = f"invalid {what}: " + "; ".join(lines)
    if allowed_fields and any(e["type"] == "extra_forbidden" for e in exc.errors()):
        message += f" (allowed parameters: {', '.join(allowed_fields)})"
    return ConfigError(message)
