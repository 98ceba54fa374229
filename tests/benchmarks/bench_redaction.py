"""Redaction benchmark: masking a 1 MB JSON answer against parsing it.

The target (issue 13): redacting 1 MB stays well under a second. Both ways an answer is
masked are measured: as parsed JSON (every string, key and number) and as text (every
decoded spelling), on an answer holding each escape the decoders look for.
"""

from __future__ import annotations

import json

from cloudfunctions.http.redaction import Redactor
from orchestration.jsontext import parse_json
from tests.benchmarks.harness import measure_interleaved, report

TARGET_SECONDS_PER_MB = 0.5
SECRETS = [
    "SECRET-MARKER-apikey-7f3a",
    "access-1-0123456789abcdef",
    "Bearer access-1-0123456789abcdef",
    "refresh-abcdef0123456789",
]


def _answer(size: int = 1024 * 1024) -> str:
    """A pretty-printed list of charges with escapes of every kind, about size characters."""
    item = {
        "id": "ch_0",
        "amount": 4200,
        "ratio": 0.3333,
        "description": 'Order for Smith & Sons <b>"gold"</b>',
        "url": "https://shop.example/o?id=1%20a&b=2",
        "path": "/v1/charges/ch_0",
        "lines": ["café", "naïve\n", "ok"],
    }
    one = len(json.dumps(item, indent=1)) + 2
    # Distinct strings, as in a real answer: the redactor searches each distinct one once.
    items = [
        {
            **item,
            "id": f"ch_{n}",
            "amount": n,
            "description": f'Order {n} for Smith & Sons <b>"gold"</b>',
            "url": f"https://shop.example/o?id={n}%20a&b=2",
            "path": f"/v1/charges/ch_{n}",
        }
        for n in range(size // one)
    ]
    return json.dumps({"object": "list", "data": items}, indent=1)


def run() -> None:
    text = _answer()
    megabytes = len(text.encode()) / (1024 * 1024)
    value = parse_json(text)
    redact = Redactor(SECRETS)
    parse, structure, plain = measure_interleaved(
        lambda: parse_json(text), lambda: redact(value), lambda: redact.text(text), repeat=7
    )
    for name, measured in (("as JSON", structure), ("as text", plain)):
        per_mb = measured.median_s / megabytes
        verdict = "ok" if per_mb < TARGET_SECONDS_PER_MB else "OVER TARGET"
        report(
            f"redaction {name}, {megabytes:.2f} MB answer",
            measured,
            parse,
            note=f"(baseline: parsing it; {per_mb * 1000:.0f} ms per MB,"
            f" target < {TARGET_SECONDS_PER_MB * 1000:.0f} ms per MB: {verdict})",
        )
