"""A generated PII set with known spans: valid-checksum cards and IBANs, emails, phones,
US SSNs, UK NI numbers, API keys, each placed in a sentence. Seeded, so reruns match."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

SEED = 20250607

_SENTENCES = [
    "Please send the summary to {} before Friday.",
    "My contact detail is {} if the report needs a follow-up.",
    "Does the policy cover the account {} mentioned in the contract?",
    "The reviewer wrote {} in the appendix of the study.",
    "Can you check whether {} appears in the onboarding guide?",
]


@dataclass(frozen=True, slots=True)
class PiiCase:
    kind: str
    text: str
    span: str


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    digits = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        candidate = digits + check
        total = 0
        for i, d in enumerate(reversed(candidate)):
            n = int(d)
            if i % 2 == 1:
                n = n * 2 - 9 if n * 2 > 9 else n * 2
            total += n
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def _iban(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in rearranged)) % 97
    return f"{country}{check:02d}{bban}"


def _card(rng: random.Random) -> str:
    number = _luhn_complete(rng.choice(["4", "51", "55", "37"]), 16 if rng.random() < 0.8 else 15, rng)
    if rng.random() < 0.5 and len(number) == 16:
        return " ".join(number[i : i + 4] for i in range(0, 16, 4))
    return number


def _iban_value(rng: random.Random) -> str:
    country, length = rng.choice([("DE", 18), ("GB", 18), ("FR", 23), ("NL", 14)])
    if country in ("GB", "NL"):
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + "".join(
            rng.choice(string.digits) for _ in range(length - 4)
        )
    else:
        bban = "".join(rng.choice(string.digits) for _ in range(length))
    iban = _iban(country, bban)
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) if rng.random() < 0.5 else iban


def _email(rng: random.Random) -> str:
    user = rng.choice(["jane.doe", "j.smith", "mueller+rag", "a_b", "research.team"]) + str(rng.randint(1, 99))
    return f"{user}@{rng.choice(['example.com', 'uni-bonn.de', 'mail.example.co.uk', 'corp.io'])}"


def _phone(rng: random.Random) -> str:
    forms = [
        lambda: f"+44 20 {rng.randint(7000, 7999)} {rng.randint(1000, 9999)}",
        lambda: f"({rng.randint(200, 989)}) {rng.randint(200, 989)}-{rng.randint(1000, 9999)}",
        lambda: f"+1 {rng.randint(200, 989)} {rng.randint(200, 989)} {rng.randint(1000, 9999)}",
        lambda: f"+49 30 {rng.randint(10000000, 99999999)}",
        lambda: f"{rng.randint(200, 989)}-{rng.randint(200, 989)}-{rng.randint(1000, 9999)}",
    ]
    return rng.choice(forms)()


def _ssn(rng: random.Random) -> str:
    return f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _nino(rng: random.Random) -> str:
    letters = "ABCEGHJKLMNPRSTWXYZ"
    return f"{rng.choice(letters)}{rng.choice(letters)}{rng.randint(0, 999999):06d}{rng.choice('ABCD')}"


def _api_key(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits
    return rng.choice(
        [
            "sk-proj-" + "".join(rng.choice(alphabet) for _ in range(32)),
            "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
            "ghp_" + "".join(rng.choice(alphabet) for _ in range(36)),
        ]
    )


GENERATORS = {
    "email": _email,
    "phone": _phone,
    "credit_card": _card,
    "iban": _iban_value,
    "us_ssn": _ssn,
    "uk_nino": _nino,
    "api_key": _api_key,
}


def generate(per_kind: int = 60) -> list[PiiCase]:
    rng = random.Random(SEED)
    cases = []
    for kind, make in GENERATORS.items():
        for _ in range(per_kind):
            span = make(rng)
            cases.append(PiiCase(kind, rng.choice(_SENTENCES).format(span), span))
    return cases
