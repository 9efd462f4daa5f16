"""Text clean-up and chunking."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ishowtts_ros.core.text import normalize_text, split_text

UPSTREAM_TEXT = (
    "I don't really care what you call me. I've been a silent spectator, watching species evolve, "
    "empires rise and fall. But always remember, I am mighty and enduring."
)


def test_first_chunk_is_the_short_first_sentence():
    chunks = split_text(UPSTREAM_TEXT, first_max_chars=60, max_chars=160)
    assert chunks[0] == "I don't really care what you call me."
    assert len(chunks) == 2


def test_long_sentences_split_at_clauses_then_words():
    text = "one, " * 60 + "end."
    chunks = split_text(text, 20, 50)
    assert all(len(c.encode()) <= 50 for c in chunks)
    assert all(len(c.encode()) <= 20 for c in chunks[:1])


def test_cjk_sentences_split_without_spaces():
    chunks = split_text("你好。我是机器人。今天天气很好！" * 4, 30, 60)
    assert chunks[0] == "你好。我是机器人。"
    assert all(len(c.encode()) <= 60 for c in chunks)


def test_normalize_removes_control_and_collapses_space():
    assert normalize_text(" a\x00b\n\t c \u200b ") == "ab c"
    assert normalize_text("\x07\x1b") == ""


def _non_space(text: str) -> str:
    return "".join(text.split())


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(min_size=0, max_size=600),
    first=st.integers(min_value=1, max_value=80),
    rest=st.integers(min_value=4, max_value=250),
)
def test_chunks_cover_the_text_in_order(text, first, rest):
    clean = normalize_text(text)
    chunks = split_text(clean, first_max_chars=first, max_chars=rest)
    assert _non_space("".join(chunks)) == _non_space(clean)
    assert all(chunk and chunk == chunk.strip() for chunk in chunks)
    for index, chunk in enumerate(chunks):
        limit = min(first, rest) if index == 0 else rest
        assert len(chunk.encode()) <= limit or len(chunk) == 1
