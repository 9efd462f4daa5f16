"""``make demo``: speak a sample sentence with the auto engine and write ``demo_output/demo.wav``."""

from __future__ import annotations

import sys

from ishowtts_ros import cli

SAMPLE = "Hello! I am a robot, and this is my voice. I can speak while I keep working."


def main() -> int:
    return cli.main(["say", SAMPLE, "--engine", "auto", "--out", "demo_output/demo.wav"])


if __name__ == "__main__":
    sys.exit(main())
