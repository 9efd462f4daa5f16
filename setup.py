"""ament_python / pip build for ishowtts_ros.

torch and the ROS client libraries are deliberately not pinned here: on a Jetson they come from JetPack and apt,
on dev/CI machines from constraints/dev.txt.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "ishowtts_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["py.typed"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "pyyaml",
        "soundfile",
        "rich",
    ],
    extras_require={
        "f5": ["f5-tts>=1.1", "vocos"],
        "playback": ["sounddevice"],
        "wyoming": ["wyoming>=1.5", "zeroconf"],
        "bench": ["matplotlib"],
    },
    zip_safe=True,
    maintainer="ishowtts_ros developers",
    maintainer_email="dev@ishowtts.invalid",
    description="ROS 2 text-to-speech node on a speed-optimized F5-TTS engine, with a Wyoming server.",
    license="MIT",
    entry_points={
        "console_scripts": [
            "ishowtts = ishowtts_ros.cli:main",
            "tts_node = ishowtts_ros.ros.node:main",
            "tts_player = ishowtts_ros.ros.player_node:main",
        ],
        "ishowtts_ros.engines": [
            "f5 = ishowtts_ros.engines.f5:PLUGIN",
            "espeak = ishowtts_ros.engines.espeak:PLUGIN",
        ],
    },
)
