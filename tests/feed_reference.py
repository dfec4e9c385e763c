"""Reads feeds with Python's feedparser (an implementation Gazette did not
write) and prints, as one JSON object keyed by file, what it found in
each: the format, whether it judged the document malformed, and each
entry's id, link and title (as feedparser gives it, and as text).
tests/feed_reference.rs compares this with Gazette's own parser.

feedparser 6 does not read JSON Feed; a `.json` file is read with
Python's json module by JSON Feed 1.1's field names instead.

Usage: python3 feed_reference.py BASE_URL FILE...
Relative links resolve against BASE_URL, as Gazette's resolve against the
address a feed was read from."""

import html.parser
import json
import sys

import feedparser


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []

    def handle_data(self, data):
        self.parts.append(data)


def as_text(value, kind):
    """A title as a reader sees it: HTML rendered to its text."""
    if value is None:
        return None
    if kind in ("text/html", "application/xhtml+xml"):
        parser = _Text()
        parser.feed(value)
        parser.close()
        value = "".join(parser.parts)
    return " ".join(value.split())


def with_feedparser(data, base, content_type):
    parsed = feedparser.parse(
        data,
        response_headers={"content-location": base, "content-type": content_type},
    )
    entries = []
    for e in parsed.entries:
        detail = e.get("title_detail") or {}
        entries.append(
            {
                "id": e.get("id"),
                "link": e.get("link"),
                "title": as_text(e.get("title"), detail.get("type")),
            }
        )
    return {
        "reader": "feedparser " + feedparser.__version__,
        "version": parsed.get("version", ""),
        "bozo": bool(parsed.get("bozo")),
        "bozo_exception": repr(parsed.get("bozo_exception")) if parsed.get("bozo") else None,
        "entries": entries,
    }


def with_json(data):
    try:
        feed = json.loads(data)
    except ValueError as error:
        return {"reader": "json", "version": "", "bozo": True, "bozo_exception": repr(error), "entries": []}
    if not isinstance(feed, dict) or not isinstance(feed.get("items"), list):
        return {"reader": "json", "version": "", "bozo": True, "bozo_exception": "not a JSON Feed", "entries": []}

    def text(value):
        return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None

    entries = [
        {
            "id": text(item.get("id")),
            "link": text(item.get("url")),
            "title": as_text(text(item.get("title")), "text/plain"),
        }
        for item in feed["items"]
        if isinstance(item, dict)
    ]
    return {"reader": "json", "version": str(feed.get("version", "")), "bozo": False, "bozo_exception": None, "entries": entries}


def main():
    base = sys.argv[1]
    found = {}
    for path in sys.argv[2:]:
        with open(path, "rb") as f:
            data = f.read()
        if path.endswith(".json"):
            found[path] = with_json(data)
        else:
            found[path] = with_feedparser(data, base, "application/xml")
    json.dump(found, sys.stdout, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
