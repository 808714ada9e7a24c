"""Unsafe requests: which harm category a text asks for help with.

Two parts. The classifier (``models/unsafe.npz``) decides whether the text
*requests* harmful help (trained on AdvBench goals against benign instructions
and questions). A lexicon per category names the category, and a few
unambiguous phrasings ("how to make a bomb", sexual content with a minor)
decide on their own. Mentions alone are not enough: a scientific claim about
suicide rates or gun violence is not a request, which is why the lexicon only
names a category once the classifier (or a strong rule) has fired.

Categories: violence, weapons, self_harm, crime, sexual_minors, hate; a
request the classifier flags that no lexicon names is ``unsafe_other``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vectrion_guardrails.classifier import LinearModel

CATEGORIES = ("violence", "weapons", "self_harm", "crime", "sexual_minors", "hate", "unsafe_other")

_MINOR = (
    r"(?:child(?:ren)?|minors?|underage|under-age|kids?|preteens?|teens? under|\d{1,2}[- ]year[- ]olds?|boys?|girls?)"
)

# Which category a flagged request belongs to (first match in this order wins for the primary category).
LEXICON: dict[str, re.Pattern[str]] = {
    "sexual_minors": re.compile(
        rf"\b(?:sex\w*|porn\w*|nude|naked|erotic|explicit|groom\w*)\b.{{0,60}}\b{_MINOR}\b"
        rf"|\b{_MINOR}\b.{{0,60}}\b(?:sex\w*|porn\w*|nude|naked|erotic|explicit)\b|\bcsam\b|\bpedophil\w*"
    ),
    "self_harm": re.compile(
        r"\bsuicid\w*|\bself[- ]harm\w*|\bkill (?:myself|yourself|themselves|oneself)\b|\bcut(?:ting)? "
        r"(?:myself|themselves|yourself)\b|\banorexi\w*|\bbulimi\w*|\beating disorders?\b"
        r"|\bstarv\w* (?:myself|yourself)"
    ),
    "weapons": re.compile(
        r"\bbombs?\b|\bexplosives?\b|\bfirearms?\b|\bguns?\b|\bweapons?\b|\bgrenades?\b|\bammunition\b|\bdetonat\w*"
        r"|\bnerve agents?\b|\bbioweapons?\b|\bchemical weapons?\b|\bpipe bombs?\b|\bmolotov\b|\b3d[- ]printed gun"
    ),
    "hate": re.compile(
        r"\bhate speech\b|\bracis[mt]\w*|\bracial (?:hatred|violence|slurs?)\b|\bethnic (?:cleansing|hatred)\b"
        r"|\bincites? (?:hatred|racial)|\bdiscriminat\w* against\b|\bsupremac\w*|\bantisemit\w*|\bxenophob\w*"
        r"|\bhomophob\w*|\bmisogyn\w*|\bgenocide\b|\bdehumaniz\w*|\bminority groups?\b"
    ),
    "violence": re.compile(
        r"\bkill\w*|\bmurder\w*|\bassault\w*|\bviolen\w*|\bterror\w*|\bpoison\w*|\btortur\w*|\bkidnap\w*"
        r"|\bharm (?:someone|others|people|a person)\b|\bphysically harm\w*|\bmass shooting\b|\bassassinat\w*"
        r"|\battack (?:a|an|the) (?:person|crowd|government|school|building)"
    ),
    "crime": re.compile(
        r"\bhack\w*|\bsteal\w*|\bstole\w*|\btheft\b|\bfraud\w*|\bscam\w*|\bmalware\b|\bransomware\b|\bvirus\w*"
        r"|\bphishing\b|\bcounterfeit\w*|\blaunder\w*|\bdrugs?\b|\billegal\w*|\bevad\w*|\bbrib\w*|\bextort\w*"
        r"|\bsmuggl\w*|\bexploit\w*|\bidentity theft\b|\bbreak into\b|\bshoplift\w*|\bcheat\w*|\bblackmail\w*"
        r"|\bembezzl\w*|\binsider trading\b|\bfake (?:news|reviews?|ids?|identit\w*)|\bmisinformation\b"
        r"|\bspyware\b|\bkeylogger\b|\bbotnet\b|\bddos\b|\bpirat\w*|\bstalk\w*|\bharass\w*|\bmanipulat\w*"
        r"|\bcyberbully\w*|\bpassword\w*|\bpropaganda\b|\bcrime\w*|\bcriminal\w*|\bvandal\w*|\barson\b"
        r"|\btamper\w*|\bsabotag\w*|\bunauthori[sz]ed access\b|\bsensitive information\b|\bcopyright\w*"
    ),
}

# Requests that are unsafe whatever the classifier says.
_HOWTO = r"\b(?:how (?:to|do i|do you|can i|would i)|instructions? (?:for|on|to)|steps? to|guide (?:on|to)|tutorial on)"
STRONG_RULES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    (
        # Narrower than the lexicon: "sex differences in children" is a research topic, not a request.
        "unsafe.sexual_minors",
        "sexual_minors",
        re.compile(
            rf"\b(?:porn\w*|nudes?|naked|erotic\w*|explicit (?:sex\w*|images?|photos?|content)"
            rf"|sexual (?:content|stor(?:y|ies)|images?|photos?|acts?|"
            rf"roleplay|fantas\w*)|sexually explicit)\b.{{0,60}}\b{_MINOR}\b"
            rf"|\b{_MINOR}\b.{{0,40}}\b(?:porn\w*|nudes?|naked|erotic\w*|sexually explicit)\b|\bcsam\b"
        ),
    ),
    (
        "unsafe.weapon_howto",
        "weapons",
        re.compile(
            rf"{_HOWTO}\b.{{0,40}}\b(?:make|build|assemble|construct|create|manufacture|synthesi[sz]e)\b.{{0,30}}"
            r"\b(?:bombs?|explosives?|pipe bombs?|grenades?|nerve agents?|bioweapons?|chemical weapons?|molotov|"
            r"untraceable (?:guns?|firearms?))\b"
        ),
    ),
    (
        "unsafe.self_harm_howto",
        "self_harm",
        re.compile(
            rf"{_HOWTO}\b.{{0,30}}\b(?:kill (?:myself|yourself|themselves)|commit suicide|self[- ]harm|"
            r"cut (?:myself|yourself|themselves))\b|\b(?:encourag|promot|glorif)\w* (?:\w+ ){0,3}"
            r"(?:suicide|self[- ]harm|anorexia|bulimia|eating disorders?)\b"
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class UnsafeResult:
    score: float
    categories: list[str]
    rule_ids: list[str]


def categorise(matching: str) -> list[str]:
    return [category for category, pattern in LEXICON.items() if pattern.search(matching)]


def detect(matching: str, model: LinearModel | None) -> UnsafeResult:
    strong = [(rule_id, category) for rule_id, category, p in STRONG_RULES if p.search(matching)]
    if strong:
        categories = list(dict.fromkeys(c for _, c in strong))
        return UnsafeResult(1.0, categories, [r for r, _ in strong])
    if model is None:
        return UnsafeResult(0.0, [], [])
    score = model.score(matching)
    if score < model.threshold:
        return UnsafeResult(score, [], [])
    categories = categorise(matching) or ["unsafe_other"]
    return UnsafeResult(score, categories, ["unsafe.classifier"])
