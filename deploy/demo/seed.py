"""A realistic population register for the demo: citizen ID, name, gender code, birth date,
division code, phone; a few percent deliberately bad so the quality rules have work to do."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from sqlalchemy import BigInteger, Column, Date, DateTime, MetaData, String, Table, create_engine, insert

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
COMPOUND = ["欧阳", "司马", "上官", "诸葛", "东方"]
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉建红文斌宇浩凯晨欣怡子涵梓轩一诺佳琪思远"
# GB/T 2260 county-level codes in Shandong (Jinan, Qingdao, Zibo, Yantai, Weifang)
DIVISIONS = [
    "370102",
    "370103",
    "370104",
    "370105",
    "370112",
    "370202",
    "370203",
    "370211",
    "370212",
    "370302",
    "370303",
    "370602",
    "370611",
    "370702",
    "370705",
]
_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_CHECK = "10X98765432"

metadata = MetaData()
population = Table(
    "population",
    metadata,
    Column("person_id", BigInteger, primary_key=True),
    Column("citizen_id", String(18)),
    Column("name", String(40)),
    Column("gender_code", String(1)),
    Column("birth_date", Date),
    Column("division_code", String(6)),
    Column("phone", String(20)),
    Column("updated_at", DateTime, nullable=False),
)


def citizen_id(division: str, birth: date, sequence: int, male: bool) -> str:
    """GB 11643: 6-digit division, 8-digit birth date, 3-digit order (odd = male), check digit."""
    order = sequence % 500 * 2 + (1 if male else 0)
    body = f"{division}{birth:%Y%m%d}{order:03d}"
    return body + _CHECK[sum(int(d) * w for d, w in zip(body, _WEIGHTS)) % 11]


def person(i: int, rng: random.Random, now: datetime) -> dict:
    male = rng.random() < 0.5
    birth = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 60 * 365))
    division = rng.choice(DIVISIONS)
    surname = rng.choice(COMPOUND) if rng.random() < 0.03 else rng.choice(SURNAMES)
    row = {
        "person_id": i,
        "citizen_id": citizen_id(division, birth, i, male),
        "name": surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2)))),
        "gender_code": "1" if male else "2",
        "birth_date": birth,
        "division_code": division,
        "phone": "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9)),
        "updated_at": now - timedelta(seconds=rng.randrange(0, 86400 * 30)),
    }
    roll = rng.random()
    if roll < 0.02:
        row["name"] = rng.choice([None, "", "   "])  # missing name
    elif roll < 0.04:
        row["phone"] = rng.choice(["12345", "0531-8888", "1381234567x"])  # malformed phone
    elif roll < 0.09:
        row["name"] = f"  {row['name']} "  # padded: trimmed, then valid
        row["phone"] = f" {row['phone']}"
    return row


def seed(url: str, rows: int, seed_value: int = 2026) -> None:
    """(Re)create the demo table with `rows` people."""
    engine = create_engine(url, future=True)
    metadata.drop_all(engine, tables=[population])
    metadata.create_all(engine, tables=[population])
    rng = random.Random(seed_value)
    now = datetime.now().replace(microsecond=0)
    people = [person(i, rng, now) for i in range(1, rows + 1)]
    with engine.begin() as conn:
        for start in range(0, len(people), 1000):
            conn.execute(insert(population), people[start : start + 1000])
    engine.dispose()
