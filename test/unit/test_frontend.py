"""The text front end: the corpus of what robots say (each expected form written out by hand), the examples of the
issue that asked for it, and properties over any text: it never raises, is idempotent, keeps what had nothing to
change and never grows text without bound."""

from __future__ import annotations

import re

import pytest
from frontend_corpus import CORPUS
from hypothesis import given, settings
from hypothesis import strategies as st

from ishowtts_ros.core.frontend import MAX_EXPANSION, speakable
from ishowtts_ros.core.text import split_text


@pytest.mark.parametrize(("language", "written", "spoken"), CORPUS, ids=[c[1][:40] for c in CORPUS])
def test_the_corpus_is_said_as_a_person_would_say_it(language, written, spoken):
    assert speakable(written, language) == spoken


def test_the_corpus_has_what_robots_say_in_both_languages():
    assert len(CORPUS) >= 200
    assert sum(c[0] == "en" for c in CORPUS) >= 100 and sum(c[0] == "zh" for c in CORPUS) >= 60


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("1.5 m", "one point five meters"),
        ("12%", "twelve percent"),
        ("10:30", "ten thirty"),
        ("-5°C", "minus five degrees Celsius"),
        ("$12.50", "twelve dollars and fifty cents"),
        ("555-0123", "five five five, oh one two three"),
        ("2.5.0", "two point five point zero"),
        ("Dr. Who", "doctor Who"),
        ("3rd", "third"),
    ],
)
def test_the_examples_english(written, spoken):
    assert speakable(written, "en") == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("12%", "百分之十二"),
        ("3.5米", "三点五米"),
        ("第2名", "第二名"),
        ("¥12.5", "十二点五元"),
        ("10:30", "十点三十分"),
    ],
)
def test_the_examples_chinese(written, spoken):
    assert speakable(written, "zh") == spoken


@pytest.mark.parametrize("language", ["de", "fr", "ja", ""])
def test_other_languages_pass_through_unchanged(language):
    assert speakable("Akku bei 12%, Abstand 1,5 m.", language) == "Akku bei 12%, Abstand 1,5 m."


def test_text_with_nothing_to_change_comes_back_unchanged():
    for text in ("Hello there, how can I help you today?", "好的，我马上过来。", "OK.", "Wait... what?!"):
        assert speakable(text, "en") == text and speakable(text, "zh") == text


def test_a_huge_number_is_read_digit_by_digit_within_the_expansion_bound():
    spoken = speakable("9" * 2000, "en")
    assert spoken.split() == ["nine"] * 2000
    assert len(spoken) <= MAX_EXPANSION * 2000 + 32


ROBOT_TEXT = st.text(
    alphabet=st.sampled_from(list("0123456789 .,:;-+/%°$€¥#&@xkmsgVAWhCFabcdefABC电量米第名个。，！？")), max_size=80
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=ROBOT_TEXT, language=st.sampled_from(["en", "zh"]))
def test_it_never_raises_is_idempotent_and_bounded(text, language):
    once = speakable(text, language)
    assert speakable(once, language) == once
    assert len(once) <= MAX_EXPANSION * len(text) + 32


@settings(max_examples=80, deadline=None, derandomize=True)
@given(words=st.lists(st.from_regex(r"[A-Za-z]{1,10}", fullmatch=True), min_size=1, max_size=12))
def test_words_with_nothing_to_change_are_kept(words):
    text = " ".join(words) + "."
    spoken = speakable(text, "en")
    kept = re.findall(r"[A-Za-z]+", spoken)
    assert [w for w in words if w not in ("x",)] == [w for w in kept if w not in ("x",)] or spoken == text


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    pieces=st.lists(
        st.sampled_from(["OK.", "Sure.", "Hi!", "No.", "Turn left now.", "Battery is fine.", "好。", "是的。"]),
        min_size=1,
        max_size=10,
    ),
    first=st.integers(min_value=12, max_value=60),
    limit=st.integers(min_value=20, max_value=120),
)
def test_no_chunk_is_shorter_than_the_engines_threshold_unless_the_whole_text_is(pieces, first, limit):
    text = " ".join(pieces)
    chunks = split_text(text, first_max_chars=first, max_chars=limit, min_chars=10)
    assert "".join(chunks).replace(" ", "") == text.replace(" ", "")
    if len(text.encode("utf-8")) >= 10:
        assert all(len(chunk.encode("utf-8")) >= 10 for chunk in chunks), chunks
