"""Every DiT block runs through one compiled graph, on every torch the engine supports (2.5 on JetPack 6.1 to the
dev pin): a per-block graph would hit Dynamo's recompile limit after a few length buckets and leave longer chunks
uncompiled without a word. Counted with a real Dynamo backend that records each graph it is given."""

from __future__ import annotations

import copy

import pytest
import torch
from torch._dynamo.testing import CompileCounter

from ishowtts_ros.core.engine import EngineConfig
from ishowtts_ros.core.voices import VoiceRegistry
from ishowtts_ros.engines.f5.attention import FastAttention
from ishowtts_ros.engines.f5.engine import F5Engine
from ishowtts_ros.engines.f5.models import random_models

pytestmark = pytest.mark.slow


@pytest.fixture
def engine():
    upstream, vocoder = random_models("tiny", seed=3)
    return F5Engine(EngineConfig(device="cpu"), models=(copy.deepcopy(upstream), copy.deepcopy(vocoder)))


def test_all_blocks_share_one_graph_per_shape(engine):
    sampler = engine.sampler
    blocks = len(sampler.dit.transformer_blocks)
    assert blocks >= 2 and all(isinstance(b.attn.processor, FastAttention) for b in sampler.dit.transformer_blocks)
    torch._dynamo.reset()
    counter = CompileCounter()
    sampler._run_block = torch.compile(sampler._call_block, backend=counter, dynamic=False)
    reference = engine.reference(VoiceRegistry.load().get())
    for text in ("Hello there.", "A somewhat longer sentence than the first one was."):
        request = engine.sample_request(reference, text, {"speed": 1.0, "seed": 5})
        sampler.sample([request], steps=3, cfg_strength=2.0, sway_sampling_coef=-1.0)
    # One graph per length (two texts, two lengths), whatever the number of blocks.
    assert counter.frame_count == 2, f"{counter.frame_count} graphs for {blocks} blocks and 2 lengths"


def test_the_processor_weights_follow_the_model_and_stay_out_of_its_state_dict(engine):
    block = engine.sampler.dit.transformer_blocks[0]
    processor = block.attn.processor
    assert processor.qkv_weight.shape[0] == 3 * block.attn.to_q.weight.shape[0]
    assert not any(".processor." in key for key in engine.sampler.dit.state_dict())
