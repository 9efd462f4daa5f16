"""Text clean-up and sentence chunking.

Chunks are contiguous slices of the cleaned text, so together they cover it completely and in order; sizes are
counted in UTF-8 bytes, as upstream F5-TTS does for its duration estimate.
"""

from __future__ import annotations

import re
import unicodedata

SENTENCE_BREAK = re.compile(r"(?<=[.!?;:\u2026])\s+|(?<=[\u3002\uff01\uff1f\uff1b\uff1a])")
_CLAUSE_BREAK = re.compile(r"(?<=[,\u3001\uff0c])\s*|\s+(?=[-\u2013\u2014]\s)")
_WORD_BREAK = re.compile(r"\s+")
_WHITESPACE = re.compile(r"\s+")

Span = tuple[int, int]
EMPTY_TEXT = "text is empty (nothing speakable after removing whitespace and control characters)"


def normalize_text(text: str) -> str:
    """Drop control and format characters, turn any whitespace into single spaces, and strip the ends."""
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char.isspace():
            kept.append(" ")
        elif category in ("Cc", "Cs", "Co", "Cn") or (category == "Cf" and char != "\u200d"):
            continue
        else:
            kept.append(char)
    return _WHITESPACE.sub(" ", "".join(kept)).strip()


def _size(text: str, span: Span) -> int:
    return len(text[span[0] : span[1]].encode("utf-8"))


def _split_span(text: str, span: Span, pattern: re.Pattern[str]) -> list[Span]:
    """Split ``span`` at ``pattern`` matches; the separators are dropped, empty pieces skipped."""
    pieces = []
    cursor = span[0]
    for match in pattern.finditer(text, span[0], span[1]):
        if match.start() > cursor:
            pieces.append((cursor, match.start()))
        cursor = max(cursor, match.end())
    if cursor < span[1]:
        pieces.append((cursor, span[1]))
    return pieces


def _hard_cut(text: str, span: Span, limit: int) -> list[Span]:
    """Cut a span with no usable break into pieces of at most ``limit`` bytes (never inside a character)."""
    pieces = []
    start = span[0]
    size = 0
    for index in range(span[0], span[1]):
        width = len(text[index].encode("utf-8"))
        if size + width > limit and index > start:
            pieces.append((start, index))
            start, size = index, 0
        size += width
    pieces.append((start, span[1]))
    return pieces


def _fit(text: str, span: Span, limit: int) -> list[Span]:
    """Break ``span`` into pieces no longer than ``limit``: at clauses, then words, then anywhere."""
    if _size(text, span) <= limit:
        return [span]
    for pattern in (_CLAUSE_BREAK, _WORD_BREAK):
        parts = _split_span(text, span, pattern)
        if len(parts) > 1:
            return _pack(text, [p for part in parts for p in _fit(text, part, limit)], limit)
    return _hard_cut(text, span, limit)


def _pack(text: str, spans: list[Span], limit: int) -> list[Span]:
    """Greedily merge neighbouring spans while the merged slice stays within ``limit`` bytes."""
    packed: list[Span] = []
    for span in spans:
        if packed and _size(text, (packed[-1][0], span[1])) <= limit:
            packed[-1] = (packed[-1][0], span[1])
        else:
            packed.append(span)
    return packed


def split_text(text: str, first_max_chars: int = 60, max_chars: int = 180, min_chars: int = 0) -> list[str]:
    """Split cleaned ``text`` into sentence-sized chunks; the first one is at most ``first_max_chars`` bytes.

    Every chunk is at most ``max_chars`` UTF-8 bytes (single characters wider than that excepted, and a chunk that
    took in a short neighbour), chunks never split inside a word unless a word alone is over the limit, and joining
    them covers every non-space character of ``text`` in order. No chunk is under ``min_chars`` bytes unless the
    whole text is: a short one is joined to the chunk after it (the last to the one before), since an engine that
    slows short texts down (F5 speaks any under 10 bytes at 0.3x speed) would stretch "Sure." to three times its
    length.
    """
    if first_max_chars < 1 or max_chars < 1:
        raise ValueError("chunk limits must be positive")
    first_max_chars = min(first_max_chars, max_chars)
    first = _first_chunk(text, first_max_chars)
    if first is None:
        return []
    rest = [p for sentence in _sentences(text, first[1]) for p in _fit(text, sentence, max_chars)]
    chunks = _join_short(text, [first, *_pack(text, rest, max_chars)], min_chars)
    return [text[s:e].strip() for s, e in chunks]


def _join_short(text: str, chunks: list[Span], min_chars: int) -> list[Span]:
    """``chunks`` with every one under ``min_chars`` bytes joined to its next neighbour (the last to its previous)."""
    joined: list[Span] = []
    for span in chunks:
        if joined and _size(text, joined[-1]) < min_chars:
            joined[-1] = (joined[-1][0], span[1])
        else:
            joined.append(span)
    if len(joined) > 1 and _size(text, joined[-1]) < min_chars:
        last = joined.pop()
        joined[-1] = (joined[-1][0], last[1])
    return joined


def _sentences(text: str, start: int, end: int | None = None) -> list[Span]:
    """Sentence spans of ``text[start:end]`` with surrounding whitespace trimmed."""
    spans = _split_span(text, (start, len(text) if end is None else end), SENTENCE_BREAK)
    return [s for s in (_strip_span(text, span) for span in spans) if s is not None]


def _first_chunk(text: str, limit: int) -> Span | None:
    """The leading sentences (or the leading part of the first one) that fit in ``limit`` bytes."""
    sentences = _sentences(text, 0)
    if not sentences:
        return None
    head = _fit(text, sentences[0], limit)
    first = _pack(text, head, limit)[0]
    if first[1] < sentences[0][1]:
        return first
    for sentence in sentences[1:]:
        if _size(text, (first[0], sentence[1])) > limit:
            break
        first = (first[0], sentence[1])
    return first


def _strip_span(text: str, span: Span) -> Span | None:
    start, end = span
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
