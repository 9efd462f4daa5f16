"""Exceptions with messages meant for the operator: each says what is wrong and what to do about it."""


class EngineError(RuntimeError):
    """A request or configuration the engine cannot serve."""


class VoiceError(EngineError):
    """A voice that is unknown, or whose voices file, reference audio or transcript is unusable."""


class AudioLimitExceeded(EngineError):
    """Raised inside a synthesis iterator instead of a chunk that would exceed the request's audio limit."""


class SynthesisCancelled(EngineError):
    """Raised inside a synthesis iterator after its cancel event was set."""
