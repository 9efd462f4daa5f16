"""Speech engines behind :class:`ishowtts_ros.core.engine.Engine`: ``espeak`` (CPU fallback) and ``f5`` (F5-TTS)."""
