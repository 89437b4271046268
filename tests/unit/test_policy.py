"""Policy validation: every bad-input class is refused with file, line, key path and rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.errors import PolicyError
from bot.models import VerdictAction
from bot.policy import load_policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = (ROOT / "policies" / "default.toml").read_text(encoding="utf-8")

MINIMAL = """\
version = "t1"

[[clauses]]
id = "c1"
title = "Be civil"
text = "No insults."

[categories.insult]
clause = "c1"
warn = 0.5
hide = 0.8

[[rules]]
id = "r1"
clause = "c1"
kind = "keyword"
category = "insult"
action = "warn"
patterns = ["idiot"]
"""


def problems(source: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(source, file="bad.toml")
    assert str(info.value).startswith("bad.toml:")
    return [str(p) for p in info.value.problems]


def test_default_policy_loads_and_covers_every_model_category() -> None:
    policy = parse_policy(DEFAULT, file="default.toml")
    assert policy.version == "2026.12-5"
    assert set(policy.categories) == {"toxicity", "severe_toxicity", "obscene", "threat",
                                      "insult", "identity_attack", "sexual_explicit"}
    assert {p.id for p in policy.protected.persons} >= {"whitfield", "adler", "nair"}
    for rule in policy.rules:
        assert rule.clause in policy.clauses


def test_every_policy_file_in_policies_is_valid() -> None:
    files = sorted((ROOT / "policies").glob("*.toml"))
    assert files
    for file in files:
        load_policy(file)


def test_minimal_policy() -> None:
    policy = parse_policy(MINIMAL)
    assert policy.rules[0].regex.search("what an idiot")
    assert not policy.rules[0].regex.search("idiotic")  # whole words only
    assert policy.thresholds_for("insult", override=None).action_for(0.9) is VerdictAction.HIDE


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # unknown keys, at the top and inside a rule
        (lambda s: s.replace('version = "t1"', 'version = "t1"\ncolour = "red"'),
         "line 2, colour: unknown key 'colour'"),
        (lambda s: s.replace('patterns = ["idiot"]', 'patterns = ["idiot"]\nweight = 2'),
         "line 20, rules[0].weight: unknown key 'weight'"),
        # wrong types
        (lambda s: s.replace("warn = 0.5", 'warn = "high"'),
         "line 10, categories.insult.warn: must be a number in [0, 1] or false, not string"),
        (lambda s: s.replace('patterns = ["idiot"]', 'patterns = "idiot"'),
         "line 19, rules[0].patterns: must be a list of non-empty strings"),
        # thresholds outside [0, 1] and out of order
        (lambda s: s.replace("hide = 0.8", "hide = 1.5"),
         "line 11, categories.insult.hide: threshold 1.5 is outside [0, 1]"),
        (lambda s: s.replace("warn = 0.5", "warn = 0.9"),
         "line 8, categories.insult: thresholds out of order: warn (0.9) must not exceed hide"),
        # duplicate ids
        (lambda s: s + s[s.index("[[rules]]"):], "line 21, rules[1].id: duplicate rule id 'r1'"),
        (lambda s: s.replace("[categories", '[[clauses]]\nid = "c1"\ntitle = "x"\ntext = "y"\n\n'
                             "[categories", 1), "line 9, clauses[1].id: duplicate clause id 'c1'"),
        # a rule citing a missing clause
        (lambda s: s.replace('clause = "c1"\nkind', 'clause = "c9"\nkind'),
         "line 15, rules[0].clause: cites clause 'c9', which the policy does not define"),
        # a regex that does not compile
        (lambda s: s.replace('kind = "keyword"', 'kind = "regex"').replace(
            '["idiot"]', '["(idiot"]'), "line 19, rules[0].patterns[0]: regex '(idiot' does not"),
        # a regex that would backtrack catastrophically on a long message
        (lambda s: s.replace('kind = "keyword"', 'kind = "regex"').replace(
            '["idiot"]', "['([a-z]+)+$']"),
         "line 19, rules[0].patterns[0]: regex '([a-z]+)+$' is refused: nested quantifier"),
        (lambda s: s.replace('kind = "keyword"', 'kind = "regex"').replace(
            '["idiot"]', "['(a|ab)*c']"),
         "line 19, rules[0].patterns[0]: regex '(a|ab)*c' is refused"),
        # an unknown action or category
        (lambda s: s.replace('action = "warn"', 'action = "ban"'),
         "line 18, rules[0].action: must be one of warn, hide, escalate, not 'ban'"),
        (lambda s: s.replace('category = "insult"\naction', 'category = "rudeness"\naction'),
         "line 17, rules[0].category: must be one of"),
        # a missing required key
        (lambda s: s.replace('version = "t1"\n', ""), "missing required key 'version'"),
        # broken TOML
        (lambda s: s + "\n[[rules]\n", "not valid TOML"),
    ],
)
def test_bad_policies_are_refused_with_location(change, expected: str) -> None:  # type: ignore[no-untyped-def]
    found = problems(change(MINIMAL))
    assert any(expected in p for p in found), found


def test_problem_names_the_rule() -> None:
    found = problems(MINIMAL.replace('action = "warn"', 'action = "ban"'))
    assert found[0].endswith("[rule r1]")


def test_all_problems_are_reported_at_once() -> None:
    source = MINIMAL.replace("hide = 0.8", "hide = 7").replace('action = "warn"', 'action = "x"')
    assert len(problems(source)) == 2


def test_channel_override_inherits_unset_levels(test_policy) -> None:  # type: ignore[no-untyped-def]
    policy = test_policy
    debate = policy.override_for("policy-debate")
    assert debate is not None and debate.name == "debate"
    obscene = policy.thresholds_for("obscene", override=debate)
    assert obscene.warn is None and obscene.hide == 0.99
    toxicity = policy.thresholds_for("toxicity", override=debate)
    assert toxicity.warn == 0.90
    assert toxicity.hide == policy.categories["toxicity"].thresholds.hide
    assert policy.override_for("general") is None


def test_policy_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = ROOT / "policies" / "default.toml"
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL.replace("hide = 0.8", "hide = 1.5"), encoding="utf-8")
    assert main(["policy", "check", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["policy", "check", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "bad.toml" in out and "line 11" in out and "outside [0, 1]" in out


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="file not found"):
        load_policy(tmp_path / "nope.toml")


def test_skip_rules_must_name_existing_rules() -> None:
    source = MINIMAL + '\n[channels.debate]\nskip_rules = ["r1", "nope"]\n'
    found = problems(source)
    assert found == ["line 22, channels.debate.skip_rules[1]: names rule 'nope', which the policy "
                     "does not define [rule nope]"]


def test_line_breaks_and_escapes_in_ids_are_shown_escaped_on_one_line() -> None:
    # The clause id carries a line break and a terminal escape: every problem that quotes it
    # (the rule citing "c1" now cites a clause that does not exist) stays one printable line.
    found = problems(MINIMAL.replace('id = "c1"', 'id = "c1\\n\\u001b[2J"', 1))
    assert found and all(p.isprintable() for p in found), found
    assert any("c1\\n\\x1b[2J" in p for p in found), found
