#!/usr/bin/env python3
"""Verifies outbound webhook requests with the Standard Webhooks project's
own Python library (`standardwebhooks`), which Gazette did not write.

Reads JSON from stdin: {"secret": "whsec_…", "requests": [{"headers": {…},
"body": "<base64 of the exact bytes>"}, …]} and prints a JSON list with, for
each request, the payload the library parsed after verifying it. Exits 1
naming the first request that does not verify."""

import base64
import json
import sys

from standardwebhooks.webhooks import Webhook


def main():
    given = json.load(sys.stdin)
    hook = Webhook(given["secret"])
    verified = []
    for i, request in enumerate(given["requests"]):
        body = base64.b64decode(request["body"])
        try:
            verified.append(hook.verify(body, request["headers"]))
        except Exception as e:  # noqa: BLE001 - report whatever the library raised
            print(f"request {i} does not verify: {type(e).__name__}: {e}", file=sys.stderr)
            sys.exit(1)
    json.dump(verified, sys.stdout)


if __name__ == "__main__":
    main()
