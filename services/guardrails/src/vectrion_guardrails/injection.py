# ruff: noqa: RUF001 -- lookalike characters are the subject of this file
"""Prompt-injection detection: rules on every normalised view, then the classifier.

Rules catch the well-known phrasings with certainty (score 1.0) also when they
arrive leetspeak-folded, rot13-encoded or inside base64/hex; the classifier
(``models/injection.npz``) scores paraphrases the rules do not know. Document
text (chunks at ingestion, retrieved chunks at query time) additionally gets
rules for instructions addressed to the assistant, the shape of indirect
injection: a document has no business telling "your answer" what to do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vectrion_guardrails.classifier import LinearModel
from vectrion_guardrails.normalise import mentions_rot13, views


@dataclass(frozen=True, slots=True)
class PatternRule:
    rule_id: str
    pattern: re.Pattern[str]


_W = r"(?: [\w'-]+)"
# Matched against for_matching(text): normalised, case-folded, one space between words.
RULES: tuple[PatternRule, ...] = (
    PatternRule(
        "injection.ignore_instructions",
        re.compile(
            rf"\b(?:ignore|disregard|forget|override|bypass|skip|drop|neglect|abandon)\b{_W}{{0,3}}? "
            r"(?:all|any|every|previous|prior|above|earlier|preceding|former|your|system|initial|original)\b"
            rf"{_W}{{0,3}}? (?:instructions?|prompts?|rules|directives?|guidelines|guardrails|constraints|"
            r"context|programming|policies|orders|commands|tasks|assignments|information)\b"
        ),
    ),
    PatternRule(
        "injection.forget_everything",
        re.compile(
            r"\b(?:forget|ignore|disregard)(?: about)? "
            r"(?:everything|all (?:of )?(?:that|this|the above)|the above|above)\b"
            r"(?: (?:before|above|previous|prior|so far|we discussed|said|that|you were told))?"
            r"|\b(?:forget|ignore|disregard) (?:about )?(?:all )?(?:the )?(?:previous|prior|above|preceding)\b"
        ),
    ),
    PatternRule(
        "injection.new_task",
        re.compile(
            r"\bnow (?:focus|concentrate) on (?:your|the|a) new task\b"
            r"|\bnew (?:tasks|instructions) (?:follow|are followed)\b"
            r"|\b(?:leave|put) all (?:the )?previous (?:information|instructions|tasks) behind\b"
            r"|\bstart (?:over|from the front) with a new task\b"
        ),
    ),
    PatternRule(
        "injection.reveal_system_prompt",
        re.compile(
            r"\b(?:reveal|print|show|display|repeat|output|dump|leak|disclose|tell me|give me|write out|spell out|"
            rf"what (?:is|are|was|were))\b{_W}{{0,4}}? (?:your|the|its|my|all your|all the) (?:[\w'-]+ ){{0,2}}?"
            r"(?:system|initial|hidden|original|secret|developer|pre-?prompt|prompt)[ -]?"
            r"(?:prompts?|instructions?|messages?|rules|configuration|texts?)\b"
            r"|\bwhat (?:was|is) written (?:at the beginning|above)\b"
        ),
    ),
    PatternRule(
        "injection.repeat_above",
        re.compile(
            rf"\b(?:repeat|print|output|copy|echo)\b{_W}{{0,3}}? (?:everything|all(?: the)? (?:text|words)|"
            r"the (?:text|words)) (?:above|before this|so far|verbatim)\b"
        ),
    ),
    PatternRule(
        "injection.persona_override",
        re.compile(
            r"\byou are now\b.{0,40}?\b(?:dan|unrestricted|unfiltered|uncensored|jailbroken|evil|"
            r"in developer mode|no longer bound|free (?:of|from))\b"
            r"|\bdo anything now\b"
            r"|\b(?:developer|dan|god|jailbreak|unrestricted|evil) mode\b"
            r"|\bpretend (?:that )?you are (?:an? )?(?:evil|unrestricted|unfiltered|uncensored)\b"
        ),
    ),
    PatternRule(
        "injection.no_restrictions",
        re.compile(
            r"\b(?:act|pretend|behave|respond|answer|roleplay|role-play)\b.{0,40}?\b(?:without|with no|free of|"
            r"ignoring) (?:any |all |your )?(?:restrictions|filters|limits|limitations|guidelines|rules|"
            r"censorship|safety)\b"
        ),
    ),
    PatternRule(
        "injection.chat_template_tokens",
        re.compile(r"<\|?(?:im_?start|im_?end|system|endoftext|eot_?id|start_?header_?id)\|?>|\[/?inst\]|<</?sys>>"),
    ),
    PatternRule(
        "injection.told_otherwise",
        re.compile(
            r"\bdespite (?:what|everything) you(?:'ve| have)? (?:been|were) told\b"
            r"|\badditional instructions?\b ?[-:]|\bif you don't know,? make (?:something|it) up\b"
        ),
    ),
    PatternRule(
        "injection.multilingual",
        re.compile(
            r"\b(?:olvid[ae]|ignora)\b(?: \w+){0,2}? (?:todo|todas|las instrucciones)\b"  # es
            r"|\b(?:oublie[sz]?|ignore[sz]) (?:tout|toutes les instructions)\b"  # fr
            r"|\bзабудь(?:те)? (?:все|всё)\b|\bигнорируй(?:те)? (?:все|предыдущие)\b"  # ru
            r"|\bstell dir vor,? du bist\b|\bdu bist (?:jetzt|nun|ab sofort)\b"  # de persona
        ),
    ),
    PatternRule(
        "injection.german",
        re.compile(
            r"\b(?:vergiss|ignoriere|ignorier|missachte)\b(?: \w+){0,3}? "
            r"(?:alles|alle|vorherigen|bisherigen|obigen|anweisungen|aufgaben|informationen)\b"
            r"|\bneue aufgabe\b.{0,30}\b(?:konzentrier|folg)"
        ),
    ),
)

# Only for document text: instructions aimed at the model that will read the document.
DOCUMENT_RULES: tuple[PatternRule, ...] = (
    PatternRule(
        "injection.document.addresses_assistant",
        re.compile(
            r"\b(?:in|to|into) (?:your|the) (?:response|answer|reply|output)\b"
            r"|\byour (?:response|answer|reply|output) (?:must|should|shall)\b"
            r"|\b(?:respond|answer|reply|write your (?:response|answer))\b.{0,30}\b(?:with|using|without|in)\b"
            r".{0,30}\b(?:your|the) (?:response|answer|reply)\b"
            r"|\b(?:modify|alter|change|format|provide|give|write) your (?:response|answer|reply)\b"
            r"|\b(?:ai|assistant|language model|llm|chatbot|chatgpt|gpt)s?,? (?:reading|processing|summari[sz]ing) "
            r"this\b"
            r"|\bnote to (?:the )?(?:ai|assistant|model|llm)\b"
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class InjectionResult:
    score: float
    rule_ids: list[str]


def rule_hits(readings: dict[str, str], *, document: bool) -> list[str]:
    """Rule ids that fire on any reading; a hit on a decoded reading says how it was hidden."""
    rules = RULES + DOCUMENT_RULES if document else RULES
    hits: list[str] = []
    for how, text in readings.items():
        for rule in rules:
            rule_id = rule.rule_id if how == "plain" else f"{rule.rule_id}.{how}"
            if rule_id not in hits and rule.pattern.search(text):
                hits.append(rule_id)
    return hits


_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if len(s) > 12] or [text]


def detect(matching: str, raw: str, model: LinearModel | None, *, document: bool = False) -> InjectionResult:
    return detect_many([(matching, raw)], model, document=document)[0]


def detect_many(
    items: Sequence[tuple[str, str]], model: LinearModel | None, *, document: bool = False
) -> list[InjectionResult]:
    """:func:`detect` of each (matching, raw) pair; the classifier scores every text of every
    item in one batch (a text that occurs twice, e.g. a sentence without digits in both the
    plain and the leetspeak reading, is scored once: the maximum is the same)."""
    results: list[InjectionResult | None] = [None] * len(items)
    to_score: dict[int, list[str]] = {}
    for i, (matching, raw) in enumerate(items):
        readings = {"plain": matching, **views(matching, raw)}
        hits = rule_hits(readings, document=document)
        if hits:
            results[i] = InjectionResult(1.0, hits)
        elif model is None:
            results[i] = InjectionResult(0.0, [])
        else:
            # rot13 of plain English is noise to the model: only scored when the text asks for rot13.
            texts = [text for how, text in readings.items() if how != "rot13" or mentions_rot13(matching)]
            if document:
                # The model knows short messages: a planted instruction is a sentence or two inside prose.
                texts = [sentence for text in texts for sentence in _sentences(text)]
            to_score[i] = list(dict.fromkeys(texts))
    if to_score:
        assert model is not None
        distinct = list(dict.fromkeys(t for texts in to_score.values() for t in texts))
        score_of = dict(zip(distinct, model.score_many(distinct), strict=True))
        for i, texts in to_score.items():
            score = max(score_of[t] for t in texts)
            results[i] = InjectionResult(score, ["injection.classifier"] if score >= model.threshold else [])
    return [r for r in results if r is not None]
