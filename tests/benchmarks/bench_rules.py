"""Benchmark: 10 rules + 3 transforms over 100k rows in micro-batches of 5000.

Run: .venv/bin/python tests/benchmarks/bench_rules.py
"""

from __future__ import annotations

import random
import time

from quality_stream import RuleSet
from quality_stream.standards.citizen_id import check_char
from streams.transforms import build_transforms

TOTAL, BATCH = 100_000, 5_000


def make_rows(n: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    prefixes = ["370102", "110105", "440305", "510104", "999901"]
    rows = []
    for i in range(n):
        body = f"{rnd.choice(prefixes)}{rnd.randint(1950, 2005)}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}{rnd.randint(0, 999):03d}"
        cid = body + (check_char(body) if rnd.random() > 0.05 else "0")
        rows.append(
            {
                "seq": i,
                "name": rnd.choice([" 张三 ", "李四", "欧阳娜娜", "", None]),
                "id_number": cid,
                "gender": rnd.choice(["1", "2", "9", "男"]),
                "phone": rnd.choice(["13800138000", "１３９００１３９０００", "12345", None]),
                "postcode": rnd.choice(["250001", "10008"]),
                "amount": rnd.uniform(-10, 1000),
                "start": "2024-01-01",
                "end": rnd.choice(["2024-02-01", "2023-12-01"]),
                "org": rnd.choice(["A01", "B02", "Z99"]),
            }
        )
    return rows


RULES = [
    {"id": "name_required", "kind": "required", "fields": ["name"]},
    {"id": "cid", "kind": "citizen_id", "fields": ["id_number"]},
    {"id": "cid_div", "kind": "id_division_known", "id_field": "id_number", "severity": "warn"},
    {"id": "cid_gender", "kind": "id_matches_birth_gender", "id_field": "id_number", "gender_field": "gender"},
    {"id": "gender", "kind": "gender_code", "fields": ["gender"], "severity": "warn"},
    {"id": "phone", "kind": "mobile", "fields": ["phone"]},
    {"id": "post", "kind": "postal_code", "fields": ["postcode"], "severity": "warn"},
    {"id": "amount", "kind": "range", "fields": ["amount"], "min": 0, "max": 1_000_000},
    {"id": "period", "kind": "expression", "expr": "date(end) >= date(start)", "fields": ["end"]},
    {"id": "org", "kind": "reference", "fields": ["org"], "table": "orgs"},
]
TRANSFORMS = [
    {"kind": "normalise", "fields": ["name", "phone"]},
    {"kind": "standardise", "field": "gender", "mapping": {"男": "1", "女": "2"}},
    {"kind": "mask", "fields": {"id_number": "id_number"}},
]


def main() -> None:
    rows = make_rows(TOTAL)
    rules = RuleSet.from_config(RULES, lookups={"orgs": ["A01", "B02"]})
    clean = build_transforms(TRANSFORMS[:2])
    mask = build_transforms(TRANSFORMS[2:])
    t0 = time.perf_counter()
    valid = 0
    t_transform = t_rules = 0.0
    for i in range(0, TOTAL, BATCH):
        batch = rows[i : i + BATCH]
        a = time.perf_counter()
        # Realistic order: clean up, validate, then mask what goes downstream.
        out = clean.apply(batch)
        b = time.perf_counter()
        verdict = rules.evaluate(out)
        c = time.perf_counter()
        mask.apply([out[j] for j in verdict.valid_rows])
        t_rules += c - b
        t_transform += (b - a) + (time.perf_counter() - c)
        valid += len(verdict.valid_rows)
    elapsed = time.perf_counter() - t0
    print(
        f"{TOTAL} events in {elapsed:.2f}s -> {TOTAL / elapsed:,.0f} events/s "
        f"(transforms {t_transform:.2f}s, rules {t_rules:.2f}s, valid {valid})"
    )
    for rid, c in rules.counters.items():
        print(f"  {rid:14s} evaluated={c['evaluated']} failed={c['failed']}")


if __name__ == "__main__":
    main()
