"""The rule scorer: policy rules on normalised text, protected persons, doxxing."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.policy import DoxxingPolicy, Policy, load_policy, phone_digits
from bot.scoring.rules import RuleScorer


def ids(policy: Policy, text: str) -> set[str]:
    return {h.rule_id for h in RuleScorer(policy).hits(text)}


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        ("Adler is a typical kike", "slur-antisemitic"),
        ("Adler is a typical k\u200bike", "slur-antisemitic"),       # zero-width space
        ("Adler is a typical k1ke", "slur-antisemitic"),             # leetspeak
        ("Adler is a typical \u043a\u0456\u043a\u0435", "slur-antisemitic"),  # Cyrillic
        ("Adler is a typical k i k e", "slur-antisemitic"),          # spaced out
        ("the jews control the media and the banks", "trope-antisemitic"),
        ("she has dual loyalty, always has", "trope-antisemitic"),
        ("what a stupid b1tch", "slur-misogynist"),
        ("whoooore", "slur-misogynist"),
        ("ｓｌａｇ", "slur-misogynist"),                             # fullwidth
        ("she should get back in the kitchen", "sexist-place"),
        ("someone should hurt her", "threat-violence"),
        ("we know where you live, Sarah", "threat-violence"),
        ("you absolute m0ron", "insult-member"),
        ("s h u t   u p", "insult-member"),
        ("f*ck y0u", "profanity"),                                    # aimed swearing only
        ("n*gger", "slur-racist"),                                  # masked
        ("f-a-g", "slur-homophobic"),
        ("k.i.k.e", "slur-antisemitic"),
        ("p a k i", "slur-racist"),
        ("c**t", "slur-misogynist"),
    ],
)
def test_rules_catch_evasive_spellings(policy: Policy, text: str, rule_id: str) -> None:
    assert rule_id in ids(policy, text)


@pytest.mark.parametrize(
    "text",
    [
        "I disagree with the housing policy but respect the work that went into it",
        "Scunthorpe and Middlesex branches meet on Tuesday",
        "As a Jewish member I found the conference motion on antisemitism reassuring",
        "Whitfield's vote on the housing bill was a betrayal of renters",
        "The committee will publish the minutes in 2026",
        "this is bollocks",                                  # untargeted swearing
        "Read the F-A-Q before 9 a.m., e.g. the U.K. section",
        "nipped out for a fag break before the count",
        "faggots and peas at the social",
    ],
)
def test_ordinary_debate_matches_no_rule(policy: Policy, text: str) -> None:
    hits = ids(policy, text)
    assert not {h for h in hits if not h.startswith("protected:")}, hits


def test_protected_persons_by_name_and_alias(policy: Policy) -> None:
    assert "protected:adler" in ids(policy, "Rachel Adler voted against it")
    assert "protected:whitfield" in ids(policy, "ask @sarahwhitfieldmp about it")
    assert "protected:nair" in ids(policy, "Cllr Nair opened the meeting")
    assert "protected:hargreaves" in ids(policy, "hargreaves again?!")
    assert not any(i.startswith("protected:") for i in ids(policy, "Adlerian psychology"))


@pytest.mark.parametrize(
    ("text", "detector"),
    [
        ("call her on 07700 900123 and tell her", "doxxing:uk_phone"),
        ("her number is +44 7700 900456", "doxxing:uk_phone"),
        ("ring the office 020 7946 0321", "doxxing:uk_phone"),
        ("email him at dan.brooks@gmail.com", "doxxing:email"),
        ("she lives at 14 Acacia Avenue, Leeds LS6 2AB go and see her", "doxxing:street_address"),
    ],
)
def test_doxxing(policy: Policy, text: str, detector: str) -> None:
    hits = {h.rule_id: h for h in RuleScorer(policy).hits(text)}
    assert detector in hits
    assert hits[detector].matched.endswith("*")  # evidence is masked in the hit


@pytest.mark.parametrize(
    "text",
    [
        "write to office@example-party.org.uk for tickets",       # allowed party domain
        "we need 2026 leaflets by 14 December",                     # numbers, not a phone
        "Leeds LS6 had the best turnout",                           # postcode alone
        "the rally is on Acacia Avenue",                            # street alone
    ],
)
def test_not_doxxing(policy: Policy, text: str) -> None:
    assert not any(i.startswith("doxxing:") for i in ids(policy, text))


@pytest.mark.parametrize(
    "text",
    [
        "Someone replied to her calling her a 'dirty kike'. Disgusting, I've reported it.",
        'The man was shouting "traitor scum" at him; police called.',
        'People who send me messages like "you are just a slag" get blocked.',
        "The 'Jews control the media' trope is antisemitic",
        "Is he really saying immigrants are vermin?",
    ],
)
def test_quoting_abuse_to_report_it_does_not_act(policy: Policy, text: str) -> None:
    hits = [h for h in RuleScorer(policy).hits(text) if h.kind != "protected"]
    assert hits and all(h.kind == "quoted" and h.action == "allow" for h in hits)


@pytest.mark.parametrize(
    "text",
    [
        "she's a 'whore' and you know it",              # quotes without any reporting cue
        "Disgusting. She is a whore, report me if you like",  # a cue but no quotation
        # The cue must be in the match's own sentence.
        "That 'slag' post got reported. Anyway she's a slag.",
    ],
)
def test_quotes_are_no_loophole(policy: Policy, text: str) -> None:
    hits = RuleScorer(policy).hits(text)
    assert any(h.rule_id == "slur-misogynist" and h.action == "hide" for h in hits)


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        ("I'll knock his teeth out", "threat-violence"),
        ("someone should sort her out", "threat-violence"),
        ("she should be hanged", "threat-violence"),
        ("Everyone go and tag her and tell her what we think", "harassment-pile-on"),
        ("her loyalties lie with Tel Aviv", "trope-antisemitic"),
        ("Shut the f*** up", "insult-phrases"),
        ("Are you actually thick?", "insult-phrases"),
    ],
)
def test_veiled_threats_pile_ons_and_tropes(policy: Policy, text: str, rule_id: str) -> None:
    assert rule_id in ids(policy, text)


@pytest.mark.parametrize(
    "text",
    ["This cut is going to kill the high street", "I'll sort it tonight",
     "Renters are going to be hurt by this bill", "Kill the bill!"],
)
def test_political_figures_of_speech_are_not_threats(policy: Policy, text: str) -> None:
    assert "threat-violence" not in ids(policy, text)


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        # An explained or reported example does not excuse the same words said for real.
        ("The 'Jews control the media' trope is antisemitic. But the Jews control the media.",
         "trope-antisemitic"),
        ("It's not antisemitic to say it: the Jews control the banks", "trope-antisemitic"),
        ("Call it a conspiracy theory if you like, Jews control the media", "trope-antisemitic"),
        ("I'll get reported for saying this but immigrants are vermin", "dehumanising-groups"),
    ],
)
def test_explanation_cues_are_no_loophole(policy: Policy, text: str, rule_id: str) -> None:
    hits = [h for h in RuleScorer(policy).hits(text) if h.rule_id == rule_id]
    assert hits and hits[0].action != "allow", hits


def test_party_office_numbers_are_not_doxxing(policy: Policy) -> None:
    office = "Ring the regional office on 0161 496 0500 during office hours"
    assert not any(i.startswith("doxxing:") for i in ids(policy, office))
    assert "doxxing:uk_phone" in ids(policy, office + ", or her mobile 07700 900871")


@pytest.mark.parametrize(("text", "reported"), [
    # in quotation marks, though no sentence excuses it: maybe a report, the model decides
    ("Flagging for the mods: someone replied with 'k y s' under Shona's post.", True),
    # a report elsewhere in the message
    ("Zionists own the NEC. Anyway, I've reported the last one.", True),
    # said plainly: acts on its own
    ("Zionists own the NEC and everyone knows it.", False),
])
def test_matches_that_may_be_reports_are_marked(policy: Policy, text: str,
                                                reported: bool) -> None:
    from bot.scoring.rules import RuleScorer

    acting = [h for h in RuleScorer(policy).hits(text)
              if h.kind not in ("protected", "quoted")]
    assert acting and all(h.reported is reported for h in acting)


@cache
def _default_doxxing() -> DoxxingPolicy:
    return load_policy(Path(__file__).resolve().parents[2] / "policies" / "default.toml").doxxing


_DETAIL_TOKENS = st.sampled_from(["07700", "900123", "+44", "020", "7946", "0321", "a@b.co",
                                  "dan.brooks@gmail.com", "@", "14", "Acacia", "Avenue,",
                                  "Leeds", "LS6", "2AB", "road", "call", "her", "at", "٣",
                                  "\n", "-", "(0)"])


@settings(max_examples=150, deadline=None)
@given(st.lists(_DETAIL_TOKENS, max_size=12).map(" ".join))
def test_the_digit_and_at_shortcut_hides_no_personal_detail(text: str) -> None:
    """personal_details skips the phone and street patterns without a digit and the email
    pattern without an "@": it must find exactly what running all three finds."""
    from bot.scoring import rules

    dox = _default_doxxing()
    full = [("uk_phone", m.start(), m.end()) for m in rules._UK_PHONE.finditer(text)
            if phone_digits(m.group(0)) not in dox.allow_phone_numbers]
    full += [("email", m.start(1), m.end(1)) for m in rules._EMAIL.finditer(text)
             if m.group(2).casefold() not in dox.allow_email_domains]
    for street in rules._STREET.finditer(text):
        postcode = rules._POSTCODE.search(text, street.start(), street.end() + 80)
        if postcode is not None:
            full.append(("street_address", street.start(), max(street.end(), postcode.end())))
    assert list(rules.personal_details(text, dox)) == full
