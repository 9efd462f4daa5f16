"""Numbers as words, English and Chinese: cardinals, ordinals, decimals and digit-by-digit reading, the pieces the
text front end (:mod:`.frontend`) says numbers with. Pure Python, no dependency."""

from __future__ import annotations

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
    "twelve": "twelfth",
}  # fmt: skip
#: Longest integer said as a number; longer digit runs (serials, IDs) are read digit by digit.
MAX_CARDINAL_DIGITS = 15

_ZH_DIGITS = "零一二三四五六七八九"
_ZH_UNITS = ((10**12, "兆"), (10**8, "亿"), (10**4, "万"))


def english_cardinal(number: int) -> str:
    """``number`` in English words: 2026 -> "two thousand twenty-six", -5 -> "minus five"."""
    if number < 0:
        return "minus " + english_cardinal(-number)
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {english_cardinal(rest)}" if rest else "")
    for scale, name in _SCALES:
        if number >= scale:
            high, rest = divmod(number, scale)
            return f"{english_cardinal(high)} {name}" + (f" {english_cardinal(rest)}" if rest else "")
    raise AssertionError("unreachable")


def english_ordinal(number: int) -> str:
    """3 -> "third", 21 -> "twenty-first", 100 -> "one hundredth"."""
    words = english_cardinal(number)
    head, sep, last = words.rpartition("-") if "-" in words.rsplit(" ", 1)[-1] else words.rpartition(" ")
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def english_digits(digits: str) -> str:
    """Digit by digit, zero as "oh" between others (phone numbers): "0123" -> "oh one two three"."""
    return " ".join("oh" if d == "0" and len(digits) > 1 else _ONES[int(d)] for d in digits)


def english_number(text: str) -> str:
    """A written number ("12", "1,200", "3.5", "007", "12345678901234567") said as a person would."""
    whole, _, fraction = text.replace(",", "").partition(".")
    if len(whole) > MAX_CARDINAL_DIGITS or (len(whole) > 1 and whole.startswith("0")):
        spoken = " ".join(_ONES[int(d)] for d in whole)
    else:
        spoken = english_cardinal(int(whole or "0"))
    if fraction:
        spoken += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return spoken


def chinese_cardinal(number: int) -> str:
    """``number`` in Chinese: 12 -> 十二, 105 -> 一百零五, 20000 -> 两万 is avoided (二万), -5 -> 负五."""
    if number < 0:
        return "负" + chinese_cardinal(-number)
    if number == 0:
        return "零"
    for scale, name in _ZH_UNITS:
        if number >= scale:
            high, rest = divmod(number, scale)
            tail = ""
            if rest:
                tail = ("零" if rest < scale // 10 else "") + chinese_cardinal(rest)
            return chinese_cardinal(high) + name + tail
    return _chinese_below_10000(number)


def _chinese_below_10000(number: int) -> str:
    digits = [int(d) for d in f"{number:04d}"]
    names = ("千", "百", "十", "")
    out, zero = [], False
    started = False
    for digit, name in zip(digits, names, strict=True):
        if digit == 0:
            zero = started
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(_ZH_DIGITS[digit] + name)
        started = True
    spoken = "".join(out)
    return spoken[1:] if spoken.startswith("一十") else spoken  # 十二, not 一十二


def chinese_digits(digits: str) -> str:
    """Digit by digit: "2026" -> 二零二六 (years, phone numbers)."""
    return "".join(_ZH_DIGITS[int(d)] for d in digits)


def chinese_number(text: str) -> str:
    """A written number said in Chinese: "3.5" -> 三点五, "1,200" -> 一千二百, "007" -> 零零七."""
    whole, _, fraction = text.replace(",", "").partition(".")
    if len(whole) > MAX_CARDINAL_DIGITS or (len(whole) > 1 and whole.startswith("0")):
        spoken = chinese_digits(whole)
    else:
        spoken = chinese_cardinal(int(whole or "0"))
    if fraction:
        spoken += "点" + chinese_digits(fraction)
    return spoken
