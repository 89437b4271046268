"""Settings from the environment (and CLI flags, which win); no secrets ever logged."""

from __future__ import annotations

__all__ = ["DEFAULT_DB", "DEFAULT_POLICY", "HEALTH_HOST", "HEALTH_OUTBOX_MAX_AGE", "HEALTH_PORT",
           "OUTBOX_INTERVAL", "PRECISIONS", "SCORERS", "Secret", "Settings", "reveal_secrets",
           "shown"]

import hmac
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.database import Target, parse_target

DEFAULT_DB = Path("data/conductbot.sqlite3")
DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.toml"
#: Seconds between outbox sweeps unless CONDUCTBOT_OUTBOX_INTERVAL says otherwise.
OUTBOX_INTERVAL = 5.0
#: Where `bot.py run` serves /healthz and /metrics (CONDUCTBOT_HEALTH_HOST, _PORT): this machine
#: only unless told otherwise; 9464 is the port Prometheus exporters conventionally take.
HEALTH_HOST = "127.0.0.1"
HEALTH_PORT = 9464
#: /healthz fails when an outbox row has waited longer than this (seconds) since it fell due
#: (CONDUCTBOT_HEALTH_OUTBOX_MAX_AGE).
HEALTH_OUTBOX_MAX_AGE = 300.0
#: A host name as a listening address may give it (an IP address is checked as one).
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?:\.(?!-)[A-Za-z0-9-]{1,63})*\.?")
SCORERS = ("auto", "offline", "detoxify")
#: How a scorer's model computes (``CONDUCTBOT_PRECISION``): ``fp32``; ``bf16``, bfloat16
#: weights and activations, which a CPU with AVX-512 BF16 or AMX multiplies in hardware (about
#: three times fp32 there, scores within 0.02); ``int8``, dynamic quantisation of the linear
#: layers (`bot.scoring.base.quantize_linear`); ``auto``, bf16 for the offline model on such
#: a CPU and fp32 anywhere else and for detoxify (see README, "Speed").
PRECISIONS = ("auto", "fp32", "bf16", "int8")



def _database(raw: str) -> Target:
    """CONDUCTBOT_DB: a SQLite file (default data/conductbot.sqlite3) or a postgresql:// URL."""
    if not raw.strip():
        return DEFAULT_DB
    try:
        return parse_target(raw)
    except ValueError as exc:
        raise ValueError(f"CONDUCTBOT_DB: {exc}") from exc

class Secret:
    """A token or signing secret. Its repr and str are masked, so neither a log line, an error,
    `repr(config)` nor `dataclasses.asdict(config)` shows it; `reveal()` hands it to the client
    library that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one call that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        return self  # immutable; asdict() copies configs deeply

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is never pickled")


def reveal_secrets(config: object, *names: str) -> None:
    """In a frozen config's __post_init__: wrap the named fields given as plain text."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, str):
            object.__setattr__(config, name, Secret(value))


#: What a pasted credential looks like: Slack tokens, Discord bot tokens, long opaque strings.
_LOOKS_SECRET = re.compile(r"xox[a-z]-|xapp-|[\w-]{20,}\.[\w-]{5,}\.[\w-]{20,}|[\w+/=-]{32,}",
                           re.IGNORECASE)


def shown(value: str, /, *, limit: int = 40) -> str:
    """A setting's value as an error may quote it: in full when short and harmless, never when
    it looks like a credential pasted into the wrong variable."""
    if _LOOKS_SECRET.search(value):
        return "a value that looks like a token (not shown)"
    if len(value) > limit:
        return f"a value of {len(value)} characters"
    return repr(value)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the core needs to start; adapters add their own."""

    #: A SQLite file's path, or a postgresql:// URL (`bot.store.driver.parse_target`).
    db: Target = DEFAULT_DB
    policy: Path = DEFAULT_POLICY
    scorer: str = "auto"
    detoxify_model: str = "original"
    detoxify_checkpoint: Path | None = None
    detoxify_config: Path | None = None
    #: How the scorer's model computes, one of `PRECISIONS`.
    precision: str = "auto"
    device: str = "cpu"
    #: Seconds between outbox sweeps (each platform's first runs at start; a row falling due
    #: wakes it sooner).
    outbox_interval: float = OUTBOX_INTERVAL
    #: The address /healthz and /metrics listen on.
    health_host: str = HEALTH_HOST
    #: Their port; None when they are off (CONDUCTBOT_HEALTH_PORT=off or 0).
    health_port: int | None = HEALTH_PORT
    #: /healthz fails when a due outbox row has waited longer than this many seconds.
    health_outbox_max_age: float = HEALTH_OUTBOX_MAX_AGE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, /) -> Settings:
        """Read CONDUCTBOT_* variables; unset ones keep their defaults."""
        env = os.environ if env is None else env

        def path(name: str) -> Path | None:
            value = env.get(name, "").strip()
            return Path(value) if value else None

        def flag(name: str) -> bool:
            value = env.get(name, "").strip().casefold()
            if value in ("", "0", "false", "no", "off"):
                return False
            if value in ("1", "true", "yes", "on"):
                return True
            raise ValueError(f"{name} must be yes or no (1/0, true/false, on/off), "
                             f"not {shown(value)}")

        precision = env.get("CONDUCTBOT_PRECISION", "auto").strip().casefold() or "auto"
        if precision not in PRECISIONS:
            raise ValueError(f"CONDUCTBOT_PRECISION must be one of {', '.join(PRECISIONS)}, "
                             f"not {shown(precision)}")
        # CONDUCTBOT_INT8=yes, the older spelling of CONDUCTBOT_PRECISION=int8.
        if flag("CONDUCTBOT_INT8"):
            if precision not in ("auto", "int8"):
                raise ValueError(f"CONDUCTBOT_INT8=yes contradicts CONDUCTBOT_PRECISION="
                                 f"{precision}; set only CONDUCTBOT_PRECISION")
            precision = "int8"
        scorer = env.get("CONDUCTBOT_SCORER", "auto").strip() or "auto"
        if scorer not in SCORERS:
            raise ValueError(f"CONDUCTBOT_SCORER must be one of {', '.join(SCORERS)}, "
                             f"not {shown(scorer)}")
        raw_interval = env.get("CONDUCTBOT_OUTBOX_INTERVAL", "").strip()
        try:
            interval = float(raw_interval) if raw_interval else OUTBOX_INTERVAL
        except ValueError:
            interval = math.nan
        if not 0.5 <= interval <= 3600:  # nan too
            raise ValueError("CONDUCTBOT_OUTBOX_INTERVAL must be a number of seconds from 0.5 "
                             f"to 3600, not {shown(raw_interval)}")
        health_host, health_port, max_age = _health(env, interval)
        return cls(
            db=_database(env.get("CONDUCTBOT_DB", "")),
            policy=path("CONDUCTBOT_POLICY") or DEFAULT_POLICY,
            scorer=scorer,
            detoxify_model=env.get("CONDUCTBOT_DETOXIFY_MODEL", "original").strip() or "original",
            detoxify_checkpoint=path("CONDUCTBOT_DETOXIFY_CHECKPOINT"),
            detoxify_config=path("CONDUCTBOT_DETOXIFY_CONFIG"),
            precision=precision,
            device=env.get("CONDUCTBOT_DEVICE", "cpu").strip() or "cpu",
            outbox_interval=interval,
            health_host=health_host,
            health_port=health_port,
            health_outbox_max_age=max_age,
        )


def _health(env: Mapping[str, str], outbox_interval: float, /) -> tuple[str, int | None, float]:
    """CONDUCTBOT_HEALTH_HOST, _PORT and _OUTBOX_MAX_AGE, validated."""
    host = env.get("CONDUCTBOT_HEALTH_HOST", "").strip() or HEALTH_HOST
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        if not (len(bare) <= 253 and _HOSTNAME.fullmatch(bare)) or bare.replace(".", "").isdigit():
            raise ValueError("CONDUCTBOT_HEALTH_HOST must be an address to listen on: "
                             f"{HEALTH_HOST} (the default, this machine only), 0.0.0.0 or :: "
                             f"(every interface) or a host name, not {shown(host)}") from None
    raw_port = env.get("CONDUCTBOT_HEALTH_PORT", "").strip()
    port: int | None = HEALTH_PORT
    if raw_port.casefold() in ("off", "0"):
        port = None
    elif raw_port:
        port = int(raw_port) if raw_port.isascii() and raw_port.isdigit() else -1
        if not 1 <= port <= 65535:
            raise ValueError("CONDUCTBOT_HEALTH_PORT must be a port number from 1 to 65535, "
                             f"or off (or 0) for no /healthz and /metrics, not {shown(raw_port)}")
    raw_age = env.get("CONDUCTBOT_HEALTH_OUTBOX_MAX_AGE", "").strip()
    try:
        max_age = float(raw_age) if raw_age else HEALTH_OUTBOX_MAX_AGE
    except ValueError:
        max_age = math.nan
    if not outbox_interval < max_age <= 7 * 86400:  # nan too
        raise ValueError("CONDUCTBOT_HEALTH_OUTBOX_MAX_AGE must be a number of seconds above "
                         f"the outbox sweep's interval ({outbox_interval:g} s) and at most a "
                         f"week (604800), not {shown(raw_age)}")
    return bare, port, max_age
