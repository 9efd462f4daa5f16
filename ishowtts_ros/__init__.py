"""ishowtts_ros: robots that speak, through a speed-optimized F5-TTS engine."""

__version__ = "0.1.0"
