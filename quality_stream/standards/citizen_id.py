"""GB 11643-1999 citizen identity number (公民身份号码).

Layout: 6-digit division code | 8-digit birth date YYYYMMDD | 3-digit sequence
(odd = male, even = female) | check character from ISO 7064 MOD 11-2 ('0'-'9' or 'X').

Pure Python, one value at a time (sensitive-data detection in the API uses it); the batch checks
over numpy arrays are quality_stream/standards/id_numbers.py.
"""

from __future__ import annotations

from datetime import date

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]  # 2^(17-i) mod 11
CHECK_CHARS = "10X98765432"  # indexed by (weighted sum mod 11)
EARLIEST_BIRTH = date(1880, 1, 1)  # anything older is a data error, not a person


def check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS))
    return CHECK_CHARS[total % 11]


def citizen_id_problem(value: str, today: date | None = None) -> str | None:
    """Return None if valid, else a short reason. Scalar reference implementation."""
    s = (value or "").strip().upper()
    if len(s) != 18 or not s[:17].isdigit() or not (s[17].isdigit() or s[17] == "X"):
        return "must be 17 digits followed by a digit or X"
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return "birth date is not a valid date"
    if not EARLIEST_BIRTH <= born <= (today or date.today()):
        return "birth date out of range"
    if check_char(s[:17]) != s[17]:
        return "check digit mismatch"
    return None


def yyyymmdd(day: date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


def upgrade_15_to_18(value: str) -> str:
    """Convert a 15-digit first-generation ID to 18 digits (insert '19', append check digit)."""
    if len(value) != 15 or not value.isdigit():
        raise ValueError("not a 15-digit ID number")
    body = value[:6] + "19" + value[6:]
    return body + check_char(body)


def gender_from_id(value: str) -> str:
    """GB/T 2261.1 gender code from the 17th digit: '1' male (odd), '2' female (even)."""
    return "1" if int(value.strip()[16]) % 2 else "2"
