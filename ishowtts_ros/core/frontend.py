"""The text front end: what a robot writes, as it should be heard. F5-TTS reads raw characters, and digits, units,
times and symbols are what it reads worst ("Battery at 12%." garbled; upstream's advice is to convert by hand), so
every engine's text passes through :func:`speakable` before it is split into chunks.

Rules of our own, one regular expression and one function each, applied in order (:data:`EN_RULES`,
:data:`ZH_RULES`): a library alone was tried and said "3.5 m" as "three point five minutes" and "第2名" as
"第两名". The language is the voice's (``language`` in the voices file); a sentence with Chinese characters takes
the Chinese rules (English words inside it stay as they are); languages other than English and Chinese pass
through unchanged. Text with nothing to change comes back unchanged. To add a rule: a pattern and a function in
the list of its language, before any rule that would take its text first, and its sentences in the test corpus
(``test/unit/frontend_corpus.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ishowtts_ros.core.numbers import (
    chinese_cardinal,
    chinese_digits,
    chinese_number,
    english_cardinal,
    english_digits,
    english_number,
    english_ordinal,
)

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]

#: Spoken text may be at most this many times longer than written text (plus a little): digits, symbols and units
#: expand ~5x at most; beyond this something is wrong and the text is left as written.
MAX_EXPANSION = 8
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?!\d)"

# --- English ------------------------------------------------------------------------------------------------------
_UNITS = {
    "km/h": ("kilometer per hour", "kilometers per hour"), "m/s": ("meter per second", "meters per second"),
    "mph": ("mile per hour", "miles per hour"), "rpm": ("revolution per minute", "revolutions per minute"),
    "kWh": ("kilowatt hour", "kilowatt hours"), "mAh": ("milliamp hour", "milliamp hours"),
    "Wh": ("watt hour", "watt hours"), "km": ("kilometer", "kilometers"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "m": ("meter", "meters"), "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"), "g": ("gram", "grams"), "ms": ("millisecond", "milliseconds"),
    "s": ("second", "seconds"), "sec": ("second", "seconds"), "min": ("minute", "minutes"), "h": ("hour", "hours"),
    "hr": ("hour", "hours"), "hrs": ("hours", "hours"), "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"), "GHz": ("gigahertz", "gigahertz"), "Hz": ("hertz", "hertz"),
    "mV": ("millivolt", "millivolts"), "kV": ("kilovolt", "kilovolts"), "V": ("volt", "volts"),
    "mA": ("milliamp", "milliamps"), "A": ("amp", "amps"), "kW": ("kilowatt", "kilowatts"), "W": ("watt", "watts"),
    "ml": ("milliliter", "milliliters"), "mL": ("milliliter", "milliliters"), "L": ("liter", "liters"),
    "l": ("liter", "liters"), "Nm": ("newton meter", "newton meters"), "N": ("newton", "newtons"),
    "kPa": ("kilopascal", "kilopascals"), "Pa": ("pascal", "pascals"), "KB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"), "GB": ("gigabyte", "gigabytes"), "TB": ("terabyte", "terabytes"),
    "fps": ("frame per second", "frames per second"), "dB": ("decibel", "decibels"), "lx": ("lux", "lux"),
    "ft": ("foot", "feet"), "lb": ("pound", "pounds"), "lbs": ("pounds", "pounds"), "oz": ("ounce", "ounces"),
    "mi": ("mile", "miles"),
}  # fmt: skip
_UNIT_NAMES = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
               "£": ("pound", "pounds", "penny", "pence"), "¥": ("yen", "yen", "", "")}  # fmt: skip
_ABBREVIATIONS = {
    "Dr.": "doctor", "Mr.": "mister", "Mrs.": "missus", "Ms.": "miz", "Prof.": "professor", "approx.": "approximately",
    "e.g.": "for example", "i.e.": "that is", "etc.": "et cetera", "vs.": "versus", "Jr.": "junior", "Sr.": "senior",
    "Approx.": "approximately", "Ave.": "avenue", "Rd.": "road", "Mt.": "mount", "a.m.": "A M", "p.m.": "P M",
}  # fmt: skip
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_SYMBOLS = {"&": " and ", "@": " at ", "+": " plus ", "×": " times ", "=": " equals ", "%": " percent ",
            "°": " degrees ", "~": " about ", "/": " slash "}  # fmt: skip


def _plural(number_text: str, forms: tuple[str, str]) -> str:
    return forms[0] if number_text in ("1", "1.0", "-1") else forms[1]


def _en_unit(match: re.Match[str]) -> str:
    sign, number, unit = match.group("sign") or "", match.group("number"), match.group("unit")
    spoken = ("minus " if sign in "-−" and sign else "") + english_number(number)
    return f"{spoken} {_plural(number, _UNITS[unit])}"


def _en_money(match: re.Match[str]) -> str:
    symbol, number = match.group("symbol"), match.group("number").replace(",", "")
    one, many, cent, cents = _CURRENCIES[symbol]
    whole, _, fraction = number.partition(".")
    spoken = f"{english_number(whole)} {one if whole == '1' else many}"
    if fraction and cent and len(fraction) == 2 and int(fraction):
        spoken += f" and {english_cardinal(int(fraction))} {cent if fraction == '01' else cents}"
    elif fraction and not cent:
        spoken = f"{english_number(number)} {many}"
    return spoken


def _en_time(match: re.Match[str]) -> str:
    hours, minutes = int(match.group("h")), int(match.group("m"))
    suffix = match.group("suffix")
    if minutes == 0 and hours == 0 and not suffix:
        spoken = "midnight"
    elif minutes == 0 and hours > 12:
        spoken = f"{english_cardinal(hours)} hundred"  # 24-hour time: "fourteen hundred"
    elif minutes == 0:
        spoken = english_cardinal(hours) + ("" if suffix else " o'clock")
    elif minutes < 10:
        spoken = f"{english_cardinal(hours)} oh {english_cardinal(minutes)}"
    else:
        spoken = f"{english_cardinal(hours)} {english_cardinal(minutes)}"
    if suffix:
        spoken += " A M" if suffix.lower().startswith("a") else " P M"
        if suffix.endswith(".") and match.end() == len(match.string):
            spoken += "."  # "p.m." ended the sentence too
    return spoken


def _en_date(match: re.Match[str]) -> str:
    year, month, day = int(match.group("y")), int(match.group("mo")), int(match.group("d"))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group(0)
    return f"{_MONTHS[month - 1]} {english_ordinal(day)}, {_en_year(year)}"


def _en_year(year: int) -> str:
    if 2000 <= year < 2010 or year % 100 == 0 or not 1100 <= year < 2100:
        return english_cardinal(year)
    high, low = divmod(year, 100)
    return f"{english_cardinal(high)} {'oh ' + english_cardinal(low) if low < 10 else english_cardinal(low)}"


def _en_phone(match: re.Match[str]) -> str:
    groups = [g for g in re.split(r"[^\d]+", match.group(0)) if g]
    spoken = ", ".join(english_digits(g) for g in groups)
    return ("plus " if match.group(0).startswith("+") else "") + spoken


def _en_version(match: re.Match[str]) -> str:
    parts = match.group("parts").split(".")
    return ("version " if match.group("v") else "") + " point ".join(
        english_number(p) if len(p) == 1 or not p.startswith("0") else english_digits(p) for p in parts
    )


def _en_temperature(match: re.Match[str]) -> str:
    sign, number, scale = match.group("sign") or "", match.group("number"), match.group("scale")
    spoken = ("minus " if sign in "-−" and sign else "") + english_number(number)
    unit = "degree" if number in ("1", "1.0") else "degrees"
    name = {"C": " Celsius", "F": " Fahrenheit", "K": " kelvin"}.get((scale or "").upper(), "")
    return f"{spoken} {unit}{name}"


def _en_percent(match: re.Match[str]) -> str:
    sign = match.group("sign") or ""
    return ("minus " if sign in "-−" and sign else "") + english_number(match.group("number")) + " percent"


def _en_range(match: re.Match[str]) -> str:
    spoken = f"{english_number(match.group('a'))} to {english_number(match.group('b'))}"
    unit = match.group("unit")
    return f"{spoken} {_UNITS[unit][1]}" if unit else spoken


def _en_signed(match: re.Match[str]) -> str:
    word = "minus" if match.group("sign") in "-−" else "plus"
    return f"{match.group('pre')}{word} {english_number(match.group('number'))}"


def _en_ordinal(match: re.Match[str]) -> str:
    return english_ordinal(int(match.group("number")))


def _en_url(match: re.Match[str]) -> str:
    text = re.sub(r"^https?://(www\.)?", "", match.group(0)).rstrip("/")
    return _spell_address(text)


def _en_email(match: re.Match[str]) -> str:
    return _spell_address(match.group(0))


def _spell_address(text: str) -> str:
    spoken = text.replace(".", " dot ").replace("@", " at ").replace("/", " slash ").replace("-", " dash ")
    spoken = spoken.replace("_", " underscore ").replace(":", " colon ")
    spoken = re.sub(r"\d+", lambda m: english_digits(m.group(0)), spoken)
    return re.sub(r"\s+", " ", spoken).strip()


def _en_symbol(match: re.Match[str]) -> str:
    symbol = match.group(0)
    if symbol == "#":
        return " number " if match.string[match.end() : match.end() + 1].isdigit() else " hash "
    return _SYMBOLS[symbol]


_PHONE = (
    r"(?<![\w.])\+?\(?\d{3}\)?[ -]\d{3}[ -]\d{4}\b"  # (555) 012-3456, 555 012 3456
    r"|(?<![\w.-])\d{3}-\d{4}\b"  # 555-0123
    r"|\+\d{1,3}(?:[ -]\d{2,4}){2,4}\b"  # +49 30 1234 5678
)
_TIME = r"\b(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::[0-5]\d)?\s?(?P<suffix>[ap]\.?m\.?|[AP]M)?(?![\w:])"
_RANGE = (
    r"(?<![\w.-])(?P<a>" + _NUMBER + r")\s?[-–]\s?(?P<b>" + _NUMBER + r")"
    r"(?:\s?(?P<unit>" + _UNIT_NAMES + r")(?![\w/]))?(?![\w-]|\.\d)"
)
_ABBREVIATION = r"(?<![\w.])(?:" + "|".join(re.escape(a) for a in _ABBREVIATIONS) + r")(?=\s|$)"

EN_RULES: list[Rule] = [
    (re.compile(r"\bhttps?://[^\s]+[^\s.,;:!?)]|\bwww\.[^\s]+[^\s.,;:!?)]"), _en_url),
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), _en_email),
    (re.compile(_ABBREVIATION), lambda m: _ABBREVIATIONS[m.group(0)] + ("." if m.end() == len(m.string) else "")),
    (re.compile(r"\bNo\.\s?(?=\d)|#\s?(?=\d)"), lambda m: "number "),
    (re.compile(r"(?P<symbol>[$€£¥])\s?(?P<number>" + _NUMBER + r")(?!\d)"), _en_money),
    (re.compile(r"\b(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})\b"), _en_date),
    (re.compile(_TIME), _en_time),
    (re.compile(_PHONE), _en_phone),
    (re.compile(r"(?<![\w.])(?P<v>v)?(?P<parts>\d+(?:\.\d+){2,})(?![\w.]*\d)"), _en_version),
    (re.compile(r"(?<=[A-Za-z])(?=\d)"), lambda m: " "),  # "A12": "A twelve"
    (re.compile(r"(?<=\d)\s?x\s?(?=\d)"), lambda m: " by "),  # "10 x 10"
    (
        re.compile(r"(?<![\w.])(?P<sign>[-−+])?(?P<number>" + _NUMBER + r")\s?°(?:\s?(?P<scale>[CFK])(?![A-Za-z]))?"),
        _en_temperature,
    ),
    (re.compile(r"(?<![\w.])(?P<sign>[-−+])?(?P<number>" + _NUMBER + r")\s?%"), _en_percent),
    (re.compile(_RANGE), _en_range),
    (
        re.compile(r"(?<![\w.])(?P<sign>[-−])?(?P<number>" + _NUMBER + r")\s?(?P<unit>" + _UNIT_NAMES + r")(?![\w/])"),
        _en_unit,
    ),
    (re.compile(r"\b(?P<number>\d+)(?:st|nd|rd|th)\b"), _en_ordinal),
    (re.compile(r"(?P<pre>^|[\s(])(?P<sign>[-−+])(?P<number>" + _NUMBER + r")\b"), _en_signed),
    (re.compile(_NUMBER), lambda m: english_number(m.group(0))),
    (re.compile(r"(?<=\w)/(?=\w)|[&@+×=%°~#]"), _en_symbol),
]

# --- Chinese ------------------------------------------------------------------------------------------------------
_ZH_UNITS = {
    "km/h": "公里每小时", "m/s": "米每秒", "km": "公里", "cm": "厘米", "mm": "毫米", "m": "米", "kg": "公斤",
    "g": "克", "mg": "毫克", "ms": "毫秒", "s": "秒", "min": "分钟", "h": "小时", "L": "升", "ml": "毫升",
    "kWh": "千瓦时", "kW": "千瓦", "W": "瓦", "V": "伏", "mAh": "毫安时", "mA": "毫安", "A": "安", "Hz": "赫兹",
    "kPa": "千帕", "Pa": "帕", "GB": "GB", "MB": "MB",
}  # fmt: skip
_ZH_UNIT_NAMES = "|".join(re.escape(u) for u in sorted(_ZH_UNITS, key=len, reverse=True))
_ZH_CURRENCIES = {"¥": "元", "￥": "元", "$": "美元", "€": "欧元", "£": "英镑"}


def _zh_money(match: re.Match[str]) -> str:
    return chinese_number(match.group("number")) + _ZH_CURRENCIES[match.group("symbol")]


def _zh_time(match: re.Match[str]) -> str:
    hours, minutes = int(match.group("h")), int(match.group("m"))
    spoken = chinese_cardinal(hours) + "点"
    if minutes:
        spoken += ("零" if minutes < 10 else "") + chinese_cardinal(minutes) + "分"
    return spoken


def _zh_date(match: re.Match[str]) -> str:
    return (
        chinese_digits(match.group("y")) + "年" + chinese_cardinal(int(match.group("mo"))) + "月"
        + chinese_cardinal(int(match.group("d"))) + "日"
    )  # fmt: skip


def _zh_signed(sign: str | None) -> str:
    return "负" if sign in ("-", "−") else ""


def _zh_temperature(match: re.Match[str]) -> str:
    """-5°C is 零下五摄氏度; an angle (no scale) is 负四十五度."""
    scale = {"C": "摄氏度", "F": "华氏度"}.get((match.group("scale") or "").upper())
    below = "" if match.group("sign") not in ("-", "−") else ("零下" if scale else "负")
    return below + chinese_number(match.group("number")) + (scale or "度")


def _zh_percent(match: re.Match[str]) -> str:
    return _zh_signed(match.group("sign")) + "百分之" + chinese_number(match.group("number"))


def _zh_unit(match: re.Match[str]) -> str:
    return _zh_signed(match.group("sign")) + chinese_number(match.group("number")) + _ZH_UNITS[match.group("unit")]


def _zh_number(match: re.Match[str]) -> str:
    return _zh_signed(match.group("sign")) + chinese_number(match.group("number"))


_ZH_PHONE = r"(?<![\d-])\d{3,4}(?:-\d{3,4}){1,2}(?![\d-])|(?<!\d)1\d{10}(?!\d)"
_ZH_UNIT = r"(?P<sign>[-−])?(?P<number>" + _NUMBER + r")\s?(?P<unit>" + _ZH_UNIT_NAMES + r")(?![A-Za-z])"

ZH_RULES: list[Rule] = [
    (re.compile(r"(?P<symbol>[¥￥$€£])\s?(?P<number>" + _NUMBER + r")(?:元)?"), _zh_money),
    (re.compile(r"(?P<y>\d{4})[-/年](?P<mo>\d{1,2})[-/月](?P<d>\d{1,2})日?"), _zh_date),
    (re.compile(r"(?P<y>\d{4})年"), lambda m: chinese_digits(m.group("y")) + "年"),
    (re.compile(r"(?<![\d:])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?![\d:])"), _zh_time),
    (re.compile(_ZH_PHONE), lambda m: chinese_digits(re.sub(r"\D", "", m.group(0)))),
    (
        re.compile(r"(?<![\d.])(?P<parts>\d+(?:\.\d+){2,})(?![\d.])"),
        lambda m: "点".join(chinese_number(p) for p in m.group("parts").split(".")),
    ),
    (re.compile(r"(?P<sign>[-−])?(?P<number>" + _NUMBER + r")\s?°\s?(?P<scale>[CF])?"), _zh_temperature),
    (
        re.compile(r"(?<![\d.])(?P<a>\d+)/(?P<b>\d+)(?![\d.])"),
        lambda m: chinese_number(m.group("b")) + "分之" + chinese_number(m.group("a")),
    ),
    (re.compile(r"(?<![第\d.])2(?=[个位次件只台辆条张本天种箱把年岁])"), lambda m: "两"),
    (re.compile(r"(?P<sign>[-−])?(?P<number>" + _NUMBER + r")\s?[%％]"), _zh_percent),
    (re.compile(_ZH_UNIT), _zh_unit),
    (re.compile(r"(?<![0-9.])(?P<sign>[-−])?(?P<number>" + _NUMBER + r")"), _zh_number),
    (re.compile(r"[%％]"), lambda m: "百分比"),
    (re.compile(r"[&＆]"), lambda m: "和"),
]


def _apply(text: str, rules: list[Rule]) -> str:
    for pattern, replace in rules:
        text = pattern.sub(replace, text)
    return text


def _english(text: str) -> str:
    spoken = _apply(text, EN_RULES)
    spoken = re.sub(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]", "", spoken)  # emoji: nothing to say
    if spoken == text:
        return text
    return re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s+", " ", spoken)).strip()


def _chinese(text: str) -> str:
    return _apply(text, ZH_RULES)


#: Abbreviations whose period does not end a sentence ("No. 5" is one piece of text for the rules).
_NO_END_AFTER = ("No", "Dr", "Mr", "Mrs", "Ms", "Prof", "St", "vs", "etc", "approx", "Approx", "e.g", "i.e", "Jr",
                 "Sr", "Mt", "Rd", "Ave", "a.m", "p.m")  # fmt: skip
_NOT_AN_END = "".join(rf"(?<!\b{re.escape(a)})" for a in _NO_END_AFTER)
#: A sentence and the space after it: ends at . ! ? ; : followed by a space (not "3.5", "Dr. Smith") or at CJK ones.
_SENTENCE = re.compile(r".+?(?:" + _NOT_AN_END + r"[.!?;:\u2026](?=\s|$)|[\u3002\uff01\uff1f\uff1b\uff1a]|$)\s*", re.S)


def speakable(text: str, language: str) -> str:
    """``text`` as it should be heard in a voice of ``language`` (see the module's docstring)."""
    primary = language.lower().replace("_", "-").split("-")[0]
    if primary not in ("en", "zh", "cmn", "yue") or not any(c.isdigit() or not c.isalnum() for c in text):
        return text
    pieces = []
    for sentence in (m.group(0) for m in _SENTENCE.finditer(text) if m.group(0)):
        body = sentence.rstrip()
        chinese = _CJK.search(body) or (primary != "en" and not _LATIN.search(body))
        pieces.append((_chinese(body) if chinese else _english(body)) + sentence[len(body) :])
    spoken = "".join(pieces)
    spoken = re.sub(r"\s+", " ", spoken).strip() if spoken != text else text
    if len(spoken) > MAX_EXPANSION * len(text) + 32:
        return text
    return spoken
