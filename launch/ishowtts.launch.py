"""Start the ishowtts text-to-speech node (and optionally the Wyoming server on the same engine).

ros2 launch ishowtts_ros ishowtts.launch.py [config:=...] [namespace:=...] [voice:=...] [nfe_step:=8]
    [playback:=false] [use_wyoming:=false] [wyoming_uri:=tcp://127.0.0.1:10200]
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    default_config = os.path.join(get_package_share_directory("ishowtts_ros"), "config", "ishowtts.yaml")
    overrides = {
        "nfe_step": ParameterValue(LaunchConfiguration("nfe_step"), value_type=int),
        "playback": ParameterValue(LaunchConfiguration("playback"), value_type=bool),
        "wyoming_uri": ParameterValue(LaunchConfiguration("wyoming_uri"), value_type=str),
        "use_wyoming": ParameterValue(LaunchConfiguration("use_wyoming"), value_type=bool),
    }
    return LaunchDescription(
        [
            DeclareLaunchArgument("config", default_value=default_config, description="parameters YAML"),
            DeclareLaunchArgument("namespace", default_value="", description="namespace for the node and topics"),
            DeclareLaunchArgument("voice", default_value="", description="voice name ('' = default voice)"),
            DeclareLaunchArgument("nfe_step", default_value="8", description="flow steps, 2-64"),
            DeclareLaunchArgument("playback", default_value="false", description="play on this machine's speaker"),
            DeclareLaunchArgument("use_wyoming", default_value="false", description="also serve Home Assistant"),
            DeclareLaunchArgument(
                "wyoming_uri", default_value="tcp://127.0.0.1:10200", description="Wyoming address (loopback)"
            ),
            Node(
                package="ishowtts_ros",
                executable="tts_node",
                name="ishowtts",
                namespace=LaunchConfiguration("namespace"),
                output="screen",
                emulate_tty=True,
                parameters=[
                    LaunchConfiguration("config"),
                    {"voice": LaunchConfiguration("voice"), **overrides},
                ],
            ),
        ]
    )
