"""A third-party engine as a package would ship one, for the plugin tests: registered through the
``ishowtts_ros.engines`` entry point of its ``ishowtts_tone_engine-0.1.dist-info`` (found wherever this folder is on
the Python path, as an installed package is), with an option of its own, ``pitch``, that no front door knows."""

from __future__ import annotations

from ishowtts_ros.core.options import OptionSpec
from ishowtts_ros.core.plugin import EnginePlugin

PITCH = OptionSpec("pitch", float, 0.0, -12.0, 12.0, "tone pitch in semitones above 220 Hz")
SPEED = OptionSpec("speed", float, 1.0, 0.5, 2.0, "words per second relative to 5")

PLUGIN = EnginePlugin(
    name="tone",
    engine_class="ishowtts_tone_engine.engine:ToneEngine",  # imported only when the engine is built
    options={"pitch": PITCH, "speed": SPEED},
    summary="one sine tone per word, for the plugin tests",
)
