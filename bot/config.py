"""Settings from the environment (and CLI flags, which win); no secrets ever logged."""

from __future__ import annotations

__all__ = ["DEFAULT_DB", "DEFAULT_POLICY", "Settings"]

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB = Path("data/conductbot.sqlite3")
DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.toml"
SCORERS = ("auto", "offline", "detoxify")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the core needs to start; adapters add their own."""

    db: Path = DEFAULT_DB
    policy: Path = DEFAULT_POLICY
    scorer: str = "auto"
    detoxify_model: str = "original"
    detoxify_checkpoint: Path | None = None
    detoxify_config: Path | None = None
    device: str = "cpu"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, /) -> Settings:
        """Read CONDUCTBOT_* variables; unset ones keep their defaults."""
        env = os.environ if env is None else env

        def path(name: str) -> Path | None:
            value = env.get(name, "").strip()
            return Path(value) if value else None

        scorer = env.get("CONDUCTBOT_SCORER", "auto").strip() or "auto"
        if scorer not in SCORERS:
            raise ValueError(f"CONDUCTBOT_SCORER must be one of {', '.join(SCORERS)}, "
                             f"not {scorer!r}")
        return cls(
            db=path("CONDUCTBOT_DB") or DEFAULT_DB,
            policy=path("CONDUCTBOT_POLICY") or DEFAULT_POLICY,
            scorer=scorer,
            detoxify_model=env.get("CONDUCTBOT_DETOXIFY_MODEL", "original").strip() or "original",
            detoxify_checkpoint=path("CONDUCTBOT_DETOXIFY_CHECKPOINT"),
            detoxify_config=path("CONDUCTBOT_DETOXIFY_CONFIG"),
            device=env.get("CONDUCTBOT_DEVICE", "cpu").strip() or "cpu",
        )
