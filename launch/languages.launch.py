"""Several languages on one robot: one text-to-speech node per model, each in its own namespace, sharing the GPU.

ros2 launch ishowtts_ros languages.launch.py [models:=...] [config:=...]

``models`` (the package's config/languages.yaml by default) maps each namespace to the parameters that differ from
``config`` for its node: typically ``checkpoint``, ``vocab`` and ``model`` of a community model and a
``voices_file`` with that language's voices. Say in German on ``/de/tts/say``, in English on ``/en/tts/say``.
"""

import os

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _nodes(context: LaunchContext):
    path = LaunchConfiguration("models").perform(context)
    with open(path, encoding="utf-8") as stream:
        models = yaml.safe_load(stream) or {}
    if not isinstance(models, dict) or not all(isinstance(v, dict) or v is None for v in models.values()):
        raise ValueError(f"{path}: expected namespace: {{parameter: value, ...}} entries")
    return [
        Node(
            package="ishowtts_ros",
            executable="tts_node",
            name="ishowtts",
            namespace=str(namespace),
            output="screen",
            emulate_tty=True,
            parameters=[LaunchConfiguration("config"), overrides or {}],
        )
        for namespace, overrides in models.items()
    ]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("ishowtts_ros")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "models", default_value=os.path.join(share, "config", "languages.yaml"),
                description="namespace -> parameters of its node (a model each)",
            ),
            DeclareLaunchArgument(
                "config", default_value=os.path.join(share, "config", "ishowtts.yaml"),
                description="parameters every node starts from",
            ),
            OpaqueFunction(function=_nodes),
        ]
    )  # fmt: skip
