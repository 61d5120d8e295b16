"""Does one value look like a kind of personal or sensitive data? Pure functions, one per kind.

    from streams.sensitive.validators import KINDS
    KINDS["citizen_id"]("11010519491231002X")   # True: shape, birth date and GB 11643 check digit

Checks go past the shape where a standard gives more: citizen ID numbers need a real birth date
and the GB 11643-1999 check digit, unified social credit codes the GB 32100 check character, bank
card numbers the Luhn digit, IP addresses must parse. A column of random digits therefore matches
only by chance (about one value in ten for Luhn, one in eleven for the ID check digit), which the
detector's match-ratio threshold keeps out.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from quality_stream.standards.citizen_id import citizen_id_problem
from quality_stream.standards.contact import landline_valid, mobile_valid
from quality_stream.standards.credit_code import credit_code_valid
from streams.transforms.masking import compound_surnames

EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}$")
# Province abbreviation, the issuing office's letter (no I or O), then 5 (6 for new-energy) characters;
# the last may be a special-use character (挂 trailer, 学 learner, 警 police, 港/澳 cross-border).
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE = re.compile(rf"^[{PROVINCES}][A-HJ-NP-Z][A-HJ-NP-Z0-9]{{4,5}}[A-HJ-NP-Z0-9挂学警港澳]$")
HAN = re.compile(r"^[\u4e00-\u9fff·]+$")
# The most common surnames (together well over 85% of the population); compound ones come from
# the masking transforms' list so a name masks and detects alike.
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季"
    "裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦"
    "戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻"
    "苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练"
    "廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿"
    "鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由"
)
# Markers of a Chinese postal address: administrative levels, then streets and numbers.
ADDRESS_LEVELS = ("省", "自治区", "市", "区", "县", "旗", "镇", "乡", "街道", "村")
ADDRESS_PLACES = ("路", "街", "道", "巷", "弄", "胡同", "号", "栋", "幢", "单元", "室", "楼", "小区", "社区", "组")


def citizen_id(value: str) -> bool:
    """GB 11643-1999: 17 digits, a real birth date, the weighted check digit (0-9 or X)."""
    return citizen_id_problem(value) is None


def mobile(value: str) -> bool:
    return mobile_valid(value)


def landline(value: str) -> bool:
    """With its area code (0531-88888888, 010 12345678, +86 531 88888888): a bare 7-8 digit
    number is too easily any other number to call it a telephone."""
    return landline_valid(value, require_area_code=True)


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def bank_card(value: str) -> bool:
    """16-19 digits (spaces or dashes between groups allowed), Luhn check digit, not all one digit."""
    s = re.sub(r"[ \-]", "", str(value).strip())
    return 16 <= len(s) <= 19 and s.isdigit() and len(set(s)) > 1 and luhn(s)


def email(value: str) -> bool:
    return EMAIL.match(str(value).strip()) is not None


def social_credit_code(value: str) -> bool:
    """GB 32100-2015: 18 characters of its alphabet, the weighted check character."""
    return credit_code_valid(value)


def chinese_name(value: str) -> bool:
    """2-4 Han characters (a minority name with the middle dot up to 12) starting with a known surname."""
    s = str(value).strip()
    if not HAN.match(s):
        return False
    if "·" in s:
        return 3 <= len(s) <= 12 and not s.startswith("·") and not s.endswith("·")
    if not 2 <= len(s) <= 4:
        return False
    return s[0] in SURNAMES or (len(s) >= 3 and s[:2] in compound_surnames())


def address(value: str) -> bool:
    """Han text naming an administrative level and a street-level place (山东省济南市历下区泉城路1号)."""
    s = str(value).strip()
    if not 6 <= len(s) <= 200 or not re.search(r"[\u4e00-\u9fff]", s):
        return False
    return any(m in s for m in ADDRESS_LEVELS) and any(m in s for m in ADDRESS_PLACES)


def licence_plate(value: str) -> bool:
    return PLATE.match(str(value).strip().upper().replace(" ", "").replace("·", "")) is not None


def ip_address(value: str) -> bool:
    s = str(value).strip()
    if not re.match(r"^[0-9A-Fa-f:.]{3,45}$", s) or ("." in s and s.count(".") != 3 and ":" not in s):
        return False
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


# In order of precedence: a value that is two kinds (an 18-digit ID that passes Luhn) counts as the first.
KINDS: dict[str, Callable[[str], bool]] = {
    "citizen_id": citizen_id,
    "social_credit_code": social_credit_code,
    "bank_card": bank_card,
    "mobile": mobile,
    "landline": landline,
    "email": email,
    "ip_address": ip_address,
    "licence_plate": licence_plate,
    "chinese_name": chinese_name,
    "address": address,
}
