"""Verifies the DKIM signatures of one message with dkimpy, a verifier
Gazette did not write. The public key comes from the command line instead
of DNS.

    python3 tests/dkim_verify.py NAME RECORD < message.eml

NAME is where the record would be published (`selector._domainkey.domain`),
RECORD its TXT value (`v=DKIM1; k=...; p=...`). Exit 0 and print `pass`
when every DKIM-Signature verifies; otherwise exit 1 with dkimpy's reasons.
"""

import logging
import sys

import dkim


def main():
    name, record = sys.argv[1], sys.argv[2]
    message = sys.stdin.buffer.read()
    asked = []

    def dnsfunc(query, timeout=5):
        query = query.decode() if isinstance(query, bytes) else query
        asked.append(query)
        if query.rstrip(".").lower() == name.lower():
            return record.encode()
        return None

    log = []

    class Collect(logging.Handler):
        def emit(self, record):
            log.append(self.format(record))

    logger = logging.getLogger("dkim-verify")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Collect())
    verifier = dkim.DKIM(message, logger=logger)
    signatures = sum(
        1 for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        if line.lower().startswith(b"dkim-signature:")
    )
    if signatures == 0:
        print("fail: the message has no DKIM-Signature")
        return 1
    for index in range(signatures):
        try:
            ok = verifier.verify(idx=index, dnsfunc=dnsfunc)
        except dkim.DKIMException as error:
            ok = False
            log.append(f"exception: {error}")
        if not ok:
            print(f"fail: signature {index} does not verify; asked DNS for {asked}")
            print("\n".join(log))
            return 1
    print("pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
