"""The Home Assistant face: a Wyoming TTS server over any engine."""
