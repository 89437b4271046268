"""The one error tree: every error conductbot raises on purpose is a ConductError."""

from __future__ import annotations

__all__ = [
    "ConductError",
    "InputError",
    "ModelError",
    "PermissionDenied",
    "PlatformError",
    "PolicyError",
    "PolicyProblem",
    "RateLimited",
    "StoreError",
    "TargetNotFound",
    "Unavailable",
    "UnsupportedAction",
]

from dataclasses import dataclass


class ConductError(Exception):
    """Root of conductbot's errors."""


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One thing wrong with a policy file, located as precisely as we can."""

    message: str
    path: str = ""
    line: int | None = None
    rule: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else ""
        if self.path:
            where = f"{where}, {self.path}" if where else self.path
        rule = f" [rule {self.rule}]" if self.rule else ""
        return f"{where}: {self.message}{rule}" if where else f"{self.message}{rule}"


class PolicyError(ConductError):
    """A policy file that cannot be used; lists every problem found, each located."""

    def __init__(self, file: str, problems: list[PolicyProblem]) -> None:
        self.file = file
        self.problems = list(problems)
        lines = "\n".join(f"  {file}: {p}" for p in self.problems)
        super().__init__(f"{file}: {len(self.problems)} problem(s) in policy\n{lines}")


class InputError(ConductError):
    """Input that cannot be used (a bad JSON line, a missing field); names where it was."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = source + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {message}" if where else message)


class ModelError(ConductError):
    """A scoring model that cannot be loaded; names the path and what to do."""

    def __init__(self, message: str, *, path: str | None = None, hint: str = "") -> None:
        self.path = path
        self.hint = hint
        text = message if path is None else f"{message} ({path})"
        super().__init__(f"{text}. {hint}" if hint else text)


class StoreError(ConductError):
    """The database refused or lost something."""


class PlatformError(ConductError):
    """A platform (Discord, Slack) refused an action."""

    #: True when retrying the same request later may succeed.
    retryable: bool = False

    def __init__(self, message: str, *, platform: str = "", action: str = "") -> None:
        self.platform = platform
        self.action = action
        super().__init__(message)


class PermissionDenied(PlatformError):
    """The bot (or the user) lacks the permission for the action."""


class TargetNotFound(PlatformError):
    """The message, channel or user is gone."""


class RateLimited(PlatformError):
    """The platform asked us to slow down."""

    retryable = True

    def __init__(
        self, message: str, *, platform: str = "", action: str = "", retry_after: float = 1.0
    ) -> None:
        super().__init__(message, platform=platform, action=action)
        self.retry_after = retry_after


class Unavailable(PlatformError):
    """The platform failed for now (a 5xx answer, a timeout, a dropped connection): the same
    request later may well succeed, so it is retried with a growing wait."""

    retryable = True


class UnsupportedAction(PlatformError):
    """The platform (or its configuration) cannot do this action at all."""
