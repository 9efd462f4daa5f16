"""Which CUDA-graph buckets warm-up captures before the engine is ready (every voice's first chunks: they set the
time to first audio) and which it leaves to the first idle moments after (the longer chunks)."""

from __future__ import annotations

from ishowtts_ros.engines.f5.graphs import BUCKET_FRAMES, bucket, warmup_buckets


def test_first_chunk_buckets_of_every_voice_come_before_ready_and_the_rest_after():
    # A 5.5 s voice whose first chunks reach 9 s, a 2 s voice whose first chunks reach 4 s; chunks up to 22 s.
    now, later = warmup_buckets([(516, 844), (188, 375)], longest=2062)
    assert now == [256, 384, 640, 768, 896]
    assert later == [512, *range(1024, 2177, BUCKET_FRAMES)]
    assert sorted(now + later) == list(range(bucket(188 + 1), bucket(2062) + 1, BUCKET_FRAMES))


def test_a_first_chunk_longer_than_the_longest_chunk_captures_everything_before_ready():
    now, later = warmup_buckets([(516, 5000)], longest=2062)
    assert now == list(range(640, 2177, BUCKET_FRAMES)) and later == []
