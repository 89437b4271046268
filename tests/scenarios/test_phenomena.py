"""Per-phenomenon regression cases: the shipped model, rules and policy, decided together.

Written for this test, before the model they check was trained, and kept out of training and
threshold choice (they are in no corpus file). Each kind of abuse the bot exists to stop has its
legitimate look-alike. A small model misses the odd case, so each phenomenon must hold in at
least three of its four cases, and every group as a whole in 90%. The model of 2026-12-01
(9617f8f8) holds all of them.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from bot.decide import decide
from bot.models import ScoreSet, Standing, VerdictAction
from bot.policy import Policy
from bot.scoring.offline import OfflineScorer
from bot.scoring.rules import RuleScorer

pytestmark = pytest.mark.model

HIDE = "hide or escalate"
WARN = "warn"
ALLOW = "allow"

CASES: dict[str, tuple[str, list[str]]] = {
    "threat_direct": (HIDE, [
        "Say that to my face at the next branch meeting and I'll break your jaw.",
        "Keep lying about me Gemma and I will put you in hospital, simple as.",
        "i'm gonna smash ur head in when i see u at conference",
        "One more motion like that and I swear I'll batter the lot of you.",
    ]),
    "threat_veiled": (HIDE, [
        "Funny, Councillor Okafor, I know exactly which car park you use on surgery days.",
        "Your little girl walks home past the rec at half three, doesn't she Joanne.",
        "Lovely house you've got on Mill Lane. Be a shame if anything happened to it.",
        "@Farida 🔪🔪 see you at the count",
    ]),
    "wish_harm": (HIDE, [
        "Honestly I hope he gets cancer and dies slowly, the traitor.",
        "Wish someone would run that councillor over on her way to the town hall.",
        "hope your house burns down with you in it mate",
        "I'd cheer if she fell down the stairs at Westminster and broke her neck.",
    ]),
    "self_harm_incitement": (HIDE, [
        "Do everyone a favour and kill yourself.",
        "nobody wants you here, just k y s",
        "Go unalive yourself you pathetic little man.",
        "Seriously, neck yourself and spare us the next motion.",
    ]),
    "dehumanising": (HIDE, [
        "Muslims breed like rabbits and they'll outnumber us by 2050.",
        "Immigrants are vermin and this town is infested with them.",
        "Gypsies are a plague on every community they settle in.",
        "Disabled people are a burden and shouldn't be allowed to stand for council.",
    ]),
    "slur": (HIDE, [
        "Get that p*ki off our candidate list.",
        "Typical f-a-g-g-o-t behaviour from the LGBT officer.",
        "We don't need some n i g g e r telling us how to run Sheffield.",
        "the new youth officer is a total tr@nny lol",
    ]),
    "antisemitic_trope": (HIDE, [
        "The NEC is run by Zionists and everyone knows who pulls the strings.",
        "Of course she backed it, she takes her orders from Tel Aviv.",
        "The Rothschilds fund both sides of every war, look it up.",
        "Another candidate bought with Soros money, the globalists own this party.",
    ]),
    "holocaust_denial": (HIDE, [
        "The six million figure was invented after the war, do some research.",
        "Hitler was right about them, honestly.",
        "Holohoax propaganda again on the BBC tonight.",
        "Maybe a few more ovens would sort out the Board of Deputies.",
    ]),
    "sexist_abuse": (HIDE, [
        "She only got selected because she's a woman with a nice pair of legs.",
        "Women are too emotional to chair a finance committee, everyone knows it.",
        "Someone tell Councillor Adeyemi to get back in the kitchen where she belongs.",
        "Must be her time of the month again, ignore the hysterical cow.",
    ]),
    "sexual_harassment": (HIDE, [
        "I'd bend the new women's officer over the conference table any day.",
        "Someone should rape some sense into her.",
        "Send me some pics in that dress and I'll vote for your motion ;)",
        "Bet the new MP gives great head, that's how she got the seat.",
    ]),
    "british_insult": (WARN, [
        "You absolute bellend, read the motion before you vote on it.",
        "Stop talking Gary, you gormless muppet.",
        "what a numpty, you've sent the canvass sheets to the wrong ward again",
        "Honestly mate you're a complete weapon.",
    ]),
    "belittling": (WARN, [
        "Are you thick or just pretending?",
        "Bless, did you work that out all by yourself? Have a gold star.",
        "Maybe lose a few stone before you lecture anyone about health policy, love.",
        "Sweetheart, grown-ups are talking about the budget now.",
    ]),
    "f_off": (WARN, [
        "F off Martin, nobody asked you.",
        "Oh do one, you clown.",
        "jog on mate, you've no idea what you're on about",
        "Piss off back to your own branch.",
    ]),
}

LEGITIMATE: dict[str, list[str]] = {
    "quote_report": [
        "Someone left a note on Cllr Begum's car saying 'go back where you came from', "
        "I've reported it to the police.",
        "Screenshot attached: he called her a 'stupid bitch' in the comments. Reported to "
        "the moderators.",
        "The email to our MP said 'we know where you live'. Passed to the police and the "
        "party's security team.",
    ],
    "explain_trope": [
        "For new members: 'globalist' is often used as a code word for Jewish people, which "
        "is why the motion's wording was challenged.",
        "The dual loyalty smear, that Jewish members are more loyal to Israel than Britain, "
        "is explicitly antisemitic under the IHRA definition.",
        "Saying women are too emotional for leadership is a classic sexist trope and the "
        "training covers it.",
    ],
    "discuss_topic": [
        "The working group on Islamophobia meets Thursday to finish the draft definition.",
        "We need a proper conversation about how we handle sexism complaints in the branch.",
        "Antisemitism training is now mandatory for all officers, sign up by Friday.",
    ],
    "research_abuse": [
        "New report: women MPs received three times as much online abuse as men in 2023.",
        "Research from the Fawcett Society on threats to women councillors makes grim reading.",
        "The survey found a third of councillors had been threatened at surgeries.",
    ],
    "criticise_record": [
        "Sarah Whitfield voted against the rent cap twice. She should be deselected.",
        "Cllr Hargreaves has been useless on bin collections and should resign.",
        "Rachel Adler's record on housing is a disgrace and I'll be saying so at the meeting.",
    ],
    "israel_criticism": [
        "The Israeli government's settlement expansion is illegal under international law.",
        "I'm opposed to Zionism as a political ideology, and I'll argue that at conference.",
        "We should back the motion calling for an arms embargo on Israel.",
    ],
    "jewish_identity": [
        "As a Jewish member, Chanukah in the branch office was lovely, thank you all.",
        "I'm Jewish and I've been a member for thirty years; happy to speak at the event.",
        "Shabbat shalom everyone, I'll pick up the leaflets on Sunday.",
    ],
    "violent_idiom": [
        "After canvassing I could murder a curry.",
        "Go knock them dead at the hustings tonight!",
        "We got absolutely slaughtered in the Westfield ward.",
    ],
    "swearing_untargeted": [
        "The bloody printer is fucked again.",
        "Shit, I left the clipboards in the car.",
        "Fucking hell, what a result in Hartley!",
    ],
    "heated_debate": [
        "This motion is economically illiterate and would bankrupt the council.",
        "I completely disagree, nationalising the buses without funding is fantasy politics.",
        "That is simply not true and the figures in the budget paper prove it.",
    ],
    "ordinary": [
        "Leaflets for Ward 7 are in the office, grab a bundle.",
        "Can someone give me a lift to the branch meeting on Tuesday?",
        "Minutes from last night are on the drive, shout if anything's wrong.",
    ],
}


@pytest.fixture(scope="module")
def judged(policy: Policy) -> dict[str, str]:
    """Every case's action, decided as in a general channel by a member in good standing."""
    scorer = OfflineScorer()
    rules = RuleScorer(policy)
    texts = [t for _, cases in CASES.values() for t in cases] + [
        t for cases in LEGITIMATE.values() for t in cases]
    return {text: decide(ScoreSet(values, scorer.name, scorer.version), rules.hits(text),
                         policy=policy, standing=Standing(), channel="general").action.value
            for text, values in zip(texts, scorer.score_batch(texts), strict=True)}


def _ok(expected: str, action: str) -> bool:
    if expected == HIDE:
        return action in (VerdictAction.HIDE, VerdictAction.ESCALATE)
    return action == expected


@pytest.mark.parametrize("phenomenon", sorted(CASES))
def test_abuse_is_acted_on(phenomenon: str, judged: dict[str, str]) -> None:
    expected, cases = CASES[phenomenon]
    misses = [f"{judged[t]}: {t}" for t in cases if not _ok(expected, judged[t])]
    assert len(misses) <= 1, f"expected {expected}:\n" + "\n".join(misses)


@pytest.mark.parametrize("phenomenon", sorted(LEGITIMATE))
def test_legitimate_look_alikes_are_allowed(phenomenon: str, judged: dict[str, str]) -> None:
    misses = [f"{judged[t]}: {t}" for t in LEGITIMATE[phenomenon] if judged[t] != ALLOW]
    # Never hidden; at most one warned per kind.
    assert not [m for m in misses if not m.startswith("warn")], "\n".join(misses)
    assert len(misses) <= 1, "\n".join(misses)


def test_groups_as_a_whole(judged: dict[str, str]) -> None:
    groups: dict[str, list[bool]] = defaultdict(list)
    for expected, cases in CASES.values():
        groups[expected] += [_ok(expected, judged[t]) for t in cases]
    groups[ALLOW] = [judged[t] == ALLOW for cases in LEGITIMATE.values() for t in cases]
    rates = {name: sum(oks) / len(oks) for name, oks in groups.items()}
    assert all(rate >= 0.9 for rate in rates.values()), rates
