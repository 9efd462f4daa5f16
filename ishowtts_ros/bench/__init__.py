"""``ishowtts bench``: the engine against upstream f5-tts, start-up times, reports."""
