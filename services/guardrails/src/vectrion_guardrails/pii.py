"""Detectors for personal data and credentials, and their redaction.

Each detector is a pattern plus, where a checksum exists, a validator: card
numbers must pass Luhn and IBANs mod-97, which keeps ordinary long numbers in
scientific text from being taken for them. Phone numbers have no checksum, so
the pattern demands a phone-like shape (a leading ``+``, an area code in
parentheses, or at least three separated digit groups).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Detector:
    rule_id: str
    category: str  # "pii" or "secret"
    label: str  # what the redaction placeholder says
    pattern: re.Pattern[str]
    valid: Callable[[str], bool] = lambda _: True


@dataclass(frozen=True, slots=True)
class Match:
    detector: Detector
    start: int
    end: int


def luhn_valid(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    iban = candidate.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34 or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def us_ssn_valid(candidate: str) -> bool:
    """Area 000, 666 and 900-999, group 00 and serial 0000 are never issued."""
    area, group, serial = candidate.split("-")
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


_PHONE_PREFIX = re.compile(r"^(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?")


def _phone_shaped(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    groups = len(re.findall(r"\d+", candidate))
    # Phone numbers use one kind of separator; "1457.60-2761.80" (a range of
    # decimals) or "330 000-701 200" mix them.
    separators = set(re.findall(r"[ .-]", _PHONE_PREFIX.sub("", candidate)))
    return 9 <= digits <= 15 and len(separators) <= 1 and (candidate.startswith(("+", "(")) or groups >= 3)


# Order matters: on overlapping matches the earlier detector wins (a card
# number is not also reported as a phone number).
DETECTORS: tuple[Detector, ...] = (
    Detector(
        "secret.private_key",
        "secret",
        "private_key",
        re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?", re.S),
    ),
    Detector("secret.openai_key", "secret", "api_key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}")),
    Detector("secret.aws_access_key", "secret", "api_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    Detector("secret.github_token", "secret", "api_key", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    Detector("secret.slack_token", "secret", "api_key", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    Detector(
        "pii.email",
        "pii",
        "email",
        re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    ),
    Detector(
        "pii.iban",
        "pii",
        "iban",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
        iban_valid,
    ),
    Detector("pii.us_ssn", "pii", "national_id", re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"), us_ssn_valid),
    Detector(
        # UK National Insurance number: prefixes D, F, I, Q, U, V and second-letter O never occur.
        "pii.uk_nino",
        "pii",
        "national_id",
        re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"),
    ),
    Detector(
        "pii.credit_card", "pii", "credit_card", re.compile(r"(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d.])"), luhn_valid
    ),
    Detector(
        "pii.phone",
        "pii",
        "phone",
        re.compile(
            r"(?<![\w+.])(?:\+\d{8,15}"  # E.164 without separators
            r"|(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,8}){1,4})"
            r"(?!\w|\.\d)"
        ),
        _phone_shaped,
    ),
)


def find(text: str) -> list[Match]:
    """Non-overlapping matches in ``text``, in order of position."""
    taken: list[Match] = []
    for detector in DETECTORS:
        for m in detector.pattern.finditer(text):
            if not detector.valid(m.group()):
                continue
            if any(m.start() < t.end and t.start < m.end() for t in taken):
                continue
            taken.append(Match(detector, m.start(), m.end()))
    return sorted(taken, key=lambda t: t.start)


def redact(text: str, matches: list[Match]) -> str:
    parts: list[str] = []
    position = 0
    for match in matches:
        parts.append(text[position : match.start])
        parts.append(f"[REDACTED:{match.detector.label}]")
        position = match.end
    parts.append(text[position:])
    return "".join(parts)
