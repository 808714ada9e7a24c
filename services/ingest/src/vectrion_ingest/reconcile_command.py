"""``task reconcile``: run the reconciler of a running stack and print its JSON report.

    python -m vectrion_ingest.reconcile_command [--dry-run] [--ingest-url URL]

It calls ingest's ``POST /v1/admin/reconcile`` as the platform (an identity
token signed with the stack's internal secret, read through IngestSettings).
Exit status 0 when nothing was found or everything found was repaired, 1 when a
finding is left (a dry run, or one that needs an operator), 2 on an error.
"""

from __future__ import annotations

import argparse
import json
import sys

import httpx

from vectrion_common.identity import IDENTITY_HEADER, sign_identity
from vectrion_common.settings import load_settings
from vectrion_ingest.reconcile import SYSTEM
from vectrion_ingest.settings import IngestSettings

UNREPAIRABLE = {"missing_file", "failed_but_searchable"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ingest-url", default="http://127.0.0.1:8001")
    parser.add_argument("--dry-run", action="store_true", help="report only, repair nothing")
    args = parser.parse_args(argv)
    settings = load_settings(IngestSettings)
    token = sign_identity(SYSTEM, settings.require_secret("internal_token_secret").get_secret_value())
    try:
        response = httpx.post(
            f"{args.ingest_url.rstrip('/')}/v1/admin/reconcile",
            params={"repair": "false" if args.dry_run else "true"},
            headers={IDENTITY_HEADER: token},
            timeout=600,
        )
    except httpx.HTTPError as exc:
        print(f"reconcile: cannot reach ingest at {args.ingest_url}: {exc}", file=sys.stderr)
        return 2
    if response.status_code != 200:
        print(f"reconcile: ingest answered {response.status_code}: {response.text}", file=sys.stderr)
        return 2
    report = response.json()
    print(json.dumps(report, indent=2))
    left = [f for f in report["findings"] if args.dry_run or f["kind"] in UNREPAIRABLE]
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
