#!/usr/bin/env python3
"""Writes a subscriber CSV for `gazette subscribers import` to stdout.

    bench/gen-subscribers.py 1000000 > /tmp/readers.csv
    bench/gen-subscribers.py 1000000 --bad-every 1000 > /tmp/readers.csv

A header row, then N rows `email,name` with unique addresses (a few with
quoted names holding commas and quotes, a few in upper case), CRLF line
endings. With --bad-every K, every K-th row is an invalid address instead,
so the importer's rejection path is timed too.
"""
import argparse
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", type=int)
    parser.add_argument("--bad-every", type=int, default=0, help="make every K-th row invalid (0: none)")
    parser.add_argument("--prefix", default="reader", help="local-part prefix (default: reader)")
    args = parser.parse_args()
    out = sys.stdout
    out.write("email,name\r\n")
    lines = []
    for i in range(1, args.rows + 1):
        if args.bad_every and i % args.bad_every == 0:
            lines.append(f"not-an-address-{i},Bad Row {i}\r\n")
        elif i % 100 == 0:
            lines.append(f'{args.prefix}{i}@Example.ORG,"Reader {i}, the ""{i}th"""\r\n')
        else:
            lines.append(f"{args.prefix}{i}@example{i % 97}.com,Reader {i}\r\n")
        if len(lines) >= 10_000:
            out.write("".join(lines))
            lines.clear()
    out.write("".join(lines))


if __name__ == "__main__":
    main()
