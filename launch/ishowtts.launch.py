"""Start the ishowtts text-to-speech node (and optionally the Wyoming server on the same engine).

ros2 launch ishowtts_ros ishowtts.launch.py [config:=...] [namespace:=...] [voice:=...] [nfe_step:=8]
    [playback:=false] [use_wyoming:=false] [wyoming_uri:=tcp://127.0.0.1:10200]

The parameters come from ``config`` (the package's config/ishowtts.yaml by default); an argument given here
overrides the file's value, and an argument left out leaves it alone.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

#: Arguments that override one parameter each when given: name -> (type, description).
OVERRIDES = {
    "voice": (str, "voice name from the voices file"),
    "nfe_step": (int, "flow steps, 2-64"),
    "playback": (bool, "play on this machine's speaker (true/false)"),
    "use_wyoming": (bool, "also serve Home Assistant over Wyoming (true/false)"),
    "wyoming_uri": (str, "Wyoming address, e.g. tcp://0.0.0.0:10200 to open it to the network"),
}


def _typed(name: str, kind: type, text: str):
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(f"launch argument {name}:={text!r} must be true or false")
        return text.lower() == "true"
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"launch argument {name}:={text!r} must be a {kind.__name__}") from None


def _node(context: LaunchContext):
    given = {name: LaunchConfiguration(name).perform(context) for name in OVERRIDES}
    overrides = {name: _typed(name, OVERRIDES[name][0], text) for name, text in given.items() if text != ""}
    return [
        Node(
            package="ishowtts_ros",
            executable="tts_node",
            name="ishowtts",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            emulate_tty=True,
            parameters=[LaunchConfiguration("config"), overrides],
        )
    ]


def generate_launch_description() -> LaunchDescription:
    default_config = os.path.join(get_package_share_directory("ishowtts_ros"), "config", "ishowtts.yaml")
    arguments = [
        DeclareLaunchArgument("config", default_value=default_config, description="parameters YAML"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace for the node and topics"),
    ]
    arguments += [
        DeclareLaunchArgument(name, default_value="", description=f"{text} ('' = the config file's value)")
        for name, (_, text) in OVERRIDES.items()
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_node)])
