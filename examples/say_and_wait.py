"""A behavior-tree leaf over the ``tts/say`` action: RUNNING while the robot speaks, SUCCESS once the line has been
spoken, FAILURE with the node's reason; ``halt()`` cancels this line only.

    python3 examples/say_and_wait.py "Please step back, I am about to move." [--ros-args -r __ns:=/robot1]
"""

from __future__ import annotations

import sys

import rclpy
from ishowtts_interfaces.action import Say
from rclpy.action import ActionClient
from rclpy.node import Node


class SayLine:
    def __init__(self, node: Node, text: str) -> None:
        self.node, self.text = node, text
        self.client = ActionClient(node, Say, "tts/say")
        self.sent = self.result = None

    def tick(self) -> str:
        if self.sent is None:
            if not self.client.wait_for_server(timeout_sec=30.0):
                return "FAILURE"
            self.sent = self.client.send_goal_async(Say.Goal(text=self.text))
        if self.result is None and self.sent.done():
            self.result = self.sent.result().get_result_async()
        if self.result is None or not self.result.done():
            return "RUNNING"
        outcome = self.result.result().result
        if not outcome.success:
            self.node.get_logger().warning(f"not spoken: {outcome.reason}")
            return "FAILURE"
        self.node.get_logger().info(f"spoken: {outcome.audio_seconds:.2f} s of audio, RTF {outcome.rtf:.3f}")
        return "SUCCESS"

    def halt(self) -> None:
        """The tree moved on: stop this line (within one chunk), nothing else."""
        if self.sent is not None and self.sent.done():
            self.sent.result().cancel_goal_async()


def main() -> int:
    args = rclpy.utilities.remove_ros_args(sys.argv)
    rclpy.init(args=sys.argv)
    node = rclpy.create_node("say_line")
    leaf = SayLine(node, args[1] if len(args) > 1 else "Please step back, I am about to move.")
    while (status := leaf.tick()) == "RUNNING":
        rclpy.spin_once(node, timeout_sec=0.1)
    print(status)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0 if status == "SUCCESS" else 1


if __name__ == "__main__":
    sys.exit(main())
