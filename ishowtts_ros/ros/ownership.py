"""One voice per node name: two ``tts_node``s started with the same fully qualified name (a launch file run twice)
would both take every text and speak it twice. Each node claims its name on a latched topic with its start time;
when a node hears an older claim to its name, it stops serving and says why, so exactly one keeps speaking (both
decide alike from the same two claims, ties broken by a random token)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

#: Latched, so a node that starts later hears every claim made before it.
CLAIM_QOS = QoSProfile(depth=16, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


class NameClaim:
    """Claims ``node``'s fully qualified name on ``tts/name_claims``; ``on_older(claim)`` is called once, on the
    node's executor, when an older node with the same name is found."""

    def __init__(self, node: Node, on_older: Callable[[dict[str, Any]], None]) -> None:
        self.mine = {"node": node.get_fully_qualified_name(), "since": time.time(), "token": uuid.uuid4().hex}
        self._on_older = on_older
        self.older: dict[str, Any] | None = None  # the claim this node yielded to
        self.younger = 0  # later claims to this name heard (those nodes yield to this one)
        self._publisher = node.create_publisher(String, "tts/name_claims", CLAIM_QOS)
        self._subscription = node.create_subscription(String, "tts/name_claims", self._heard, CLAIM_QOS)
        self._publisher.publish(String(data=json.dumps(self.mine)))

    def _heard(self, message: String) -> None:
        try:
            claim = json.loads(message.data)
            other = (float(claim["since"]), str(claim["token"]))
        except (ValueError, TypeError, KeyError):
            return
        if claim.get("node") != self.mine["node"] or other[1] == self.mine["token"]:
            return
        if other > (self.mine["since"], self.mine["token"]):
            self.younger += 1
        elif self.older is None:
            self.older = claim
            self._on_older(claim)
