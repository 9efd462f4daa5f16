"""A client of a running ``tts_node`` over DDS, used by ``make demo`` and the process-level tests: sends ``tts/say``
goals (feedback, result, cancel) and publishes text, collects audio chunks, events, RTF, the speaking state and
diagnostics, calls the services and sets parameters through the node's real parameter service."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from action_msgs.msg import GoalStatus
from diagnostic_msgs.msg import DiagnosticArray
from ishowtts_interfaces.action import Say
from ishowtts_interfaces.msg import AudioChunk as AudioChunkMsg
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, Float32, String
from std_srvs.srv import Trigger

from ishowtts_ros.ros.audio_msg import AUDIO_QOS, EVENTS_QOS, TEXT_QOS, decode_chunk

#: Humble's rclpy cannot tell whether a subscription is matched yet (Subscription.get_publisher_count is Jazzy+).
HUMBLE_MATCH_SETTLE_SECONDS = 1.0

#: Deeper than the node's depth-1 latch, so a test sees every transition, not only the latest state.
SPEAKING_HISTORY_QOS = QoSProfile(
    depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
)


@dataclass
class ReceivedChunk:
    samples: np.ndarray
    sample_rate: int
    utterance_id: str
    index: int
    is_last: bool
    received_at: float


STATUS_NAMES = {
    GoalStatus.STATUS_SUCCEEDED: "succeeded",
    GoalStatus.STATUS_ABORTED: "aborted",
    GoalStatus.STATUS_CANCELED: "canceled",
}


@dataclass
class SayGoal:
    """A ``tts/say`` goal sent by :meth:`TtsClient.send_goal`: its feedback as it arrives, then its outcome."""

    client: TtsClient
    handle: Any
    utterance_id: str
    feedback: list[Any]
    sent_at: float

    def result(self, timeout: float = 120.0) -> tuple[str, Any]:
        """Wait for the goal to end: (``succeeded``/``aborted``/``canceled``, ``Say.Result``)."""
        future = self.handle.get_result_async()
        self.client.wait_for(future.done, timeout, f"the result of goal {self.utterance_id}")
        reply = future.result()
        return STATUS_NAMES.get(reply.status, f"status {reply.status}"), reply.result

    def cancel(self, timeout: float = 10.0) -> bool:
        """Ask the node to cancel this goal; True when it accepted (the goal then ends ``canceled``)."""
        future = self.handle.cancel_goal_async()
        self.client.wait_for(future.done, timeout, f"the cancel reply for {self.utterance_id}")
        reply = future.result()
        return len(reply.goals_canceling) > 0


class TtsClient:
    """Everything a test or demo needs from the node, with waits that time out instead of hanging."""

    def __init__(self, namespace: str = "", node_name: str = "ishowtts") -> None:
        if not rclpy.ok():
            rclpy.init()
        self.namespace = namespace.rstrip("/")
        self.target = f"{self.namespace}/{node_name}"
        self.node = rclpy.create_node(f"ishowtts_client_{uuid.uuid4().hex[:8]}", namespace=self.namespace or "/")
        self._changed = threading.Condition()
        self.chunks: list[ReceivedChunk] = []
        self.events: list[dict[str, Any]] = []
        self.rtf: list[float] = []
        self.speaking: list[bool] = []
        self.diagnostics: list[DiagnosticArray] = []
        #: What a request's outcome arrives on; ``say`` waits until the node publishes to both.
        self._outcome_subscriptions = [
            self.node.create_subscription(AudioChunkMsg, "tts/audio", self._on_audio, AUDIO_QOS),
            self.node.create_subscription(String, "tts/events", self._on_event, EVENTS_QOS),
        ]
        self.node.create_subscription(Float32, "tts/rtf", lambda m: self._append(self.rtf, m.data), 50)
        self.node.create_subscription(
            Bool, "tts/speaking", lambda m: self._append(self.speaking, m.data), SPEAKING_HISTORY_QOS
        )
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.publishers: dict[str, Any] = {}
        self.texts_sent = 0  # by say(); the node's texts_received diagnostics count the same messages
        self._seen_in_graph: set[str] = set()
        # Plain parameter service clients, the only kind Humble's rclpy offers.
        self._get_parameters: Any = self.node.create_client(GetParameters, f"{self.target}/get_parameters")
        self._set_parameters: Any = self.node.create_client(SetParameters, f"{self.target}/set_parameters")
        self._describe_parameters: Any = self.node.create_client(
            DescribeParameters, f"{self.target}/describe_parameters"
        )
        self._say_client: Any = ActionClient(self.node, Say, "tts/say")
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._executor.spin, daemon=True)
        self._spinner.start()

    # --- receiving --------------------------------------------------------------------------------------------
    def _append(self, target: list, value: Any) -> None:
        with self._changed:
            target.append(value)
            self._changed.notify_all()

    def _on_audio(self, message: AudioChunkMsg) -> None:
        decoded = decode_chunk(message)
        chunk = ReceivedChunk(
            samples=decoded.samples,
            sample_rate=decoded.sample_rate,
            utterance_id=decoded.utterance_id,
            index=decoded.index,
            is_last=decoded.is_last,
            received_at=time.monotonic(),
        )
        self._append(self.chunks, chunk)

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        if any(status.name.startswith(f"{self.target}:") for status in message.status):
            self._append(self.diagnostics, message)

    def diagnostic_values(self) -> dict[str, str]:
        """Key/values of the latest diagnostics status of the target node ({} before the first one arrives)."""
        if not self.diagnostics:
            return {}
        status = self.diagnostics[-1].status[0]
        return {pair.key: pair.value for pair in status.values}

    def _on_event(self, message: String) -> None:
        event = json.loads(message.data)
        event["received_at"] = time.monotonic()
        self._append(self.events, event)

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
                self._changed.wait(min(remaining, 0.2))

    def events_of(self, name: str | None = None, utterance_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in list(self.events)
            if (name is None or e["event"] == name) and (utterance_id is None or e["id"] == utterance_id)
        ]

    def wait_event(self, name: str, timeout: float = 60.0, **match: Any) -> dict[str, Any]:
        def found():
            for event in self.events_of(name):
                if all(event.get(key) == value for key, value in match.items()):
                    return event
            return None

        return self.wait_for(found, timeout, f"event {name} {match}")

    def audio_of(self, utterance_id: str) -> list[ReceivedChunk]:
        return [c for c in list(self.chunks) if c.utterance_id == utterance_id]

    def wait_audio(self, utterance_id: str, timeout: float = 10.0, *, complete: bool = True) -> list[ReceivedChunk]:
        """The utterance's chunks once the last one has arrived (``complete``), else once any has. Audio has its own
        topic, so its chunks may still be on the way when the event that ended the utterance arrives."""
        what = "the last audio chunk" if complete else "an audio chunk"
        return self.wait_for(
            lambda: (chunks := self.audio_of(utterance_id)) and (chunks[-1].is_last or not complete) and chunks,
            timeout,
            f"{what} of {utterance_id}",
        )

    # --- sending ----------------------------------------------------------------------------------------------
    def say(self, text: str, topic: str = "tts/text") -> float:
        """Publish text once the node hears it and its audio and events reach us (DDS matches each pair of
        endpoints on its own, and a volatile topic's messages sent before the match are lost); returns the
        monotonic time it was sent."""
        if topic not in self.publishers:
            self.publishers[topic] = self.node.create_publisher(String, topic, TEXT_QOS)
            self.wait_for(lambda: self.publishers[topic].get_subscription_count() > 0, 20, f"a subscriber on {topic}")
        for subscription in self._outcome_subscriptions:
            what = f"a publisher matched to our {subscription.topic_name}"
            self.wait_for(functools.partial(self._matched, subscription), 20, what)
        sent = time.monotonic()
        self.publishers[topic].publish(String(data=text))
        self.texts_sent += 1
        return sent

    def send_goal(
        self, text: str, voice: str = "", nfe_step: int = 0, speed: float = 0.0, interrupt: bool = False,
        timeout: float = 20.0,
    ) -> SayGoal:  # fmt: skip
        """Send a ``tts/say`` goal and wait until the node has accepted it."""
        if not self._say_client.wait_for_server(timeout_sec=timeout):
            raise TimeoutError("the tts/say action server is not available")
        self._wait_feedback_matched(timeout)
        feedback: list[Any] = []
        goal = Say.Goal(text=text, voice=voice, nfe_step=nfe_step, speed=speed, interrupt=interrupt)
        sent = time.monotonic()
        future = self._say_client.send_goal_async(goal, feedback_callback=lambda m: self._append(feedback, m.feedback))
        self.wait_for(future.done, timeout, "the goal response")
        handle: Any = future.result()
        if not handle.accepted:
            raise RuntimeError("tts/say rejected the goal")
        return SayGoal(self, handle, bytes(handle.goal_id.uuid).hex(), feedback, sent)

    def _wait_feedback_matched(self, timeout: float) -> None:
        """Feedback is a volatile topic, and the action client's feedback subscription cannot say when it is
        matched: before the first goal, wait for the node's feedback publisher to settle in the graph so early
        feedback is not lost."""
        topic = f"{self.namespace}/tts/say/_action/feedback"
        self.wait_for(lambda: self._settled_in_graph(topic), timeout, f"a publisher on {topic}")

    def _matched(self, subscription: Any) -> bool:
        """Whether a publisher is matched to ``subscription``: exact where rclpy can say (Jazzy on), else from the
        graph (Humble)."""
        publisher_count = getattr(subscription, "get_publisher_count", None)  # absent from Humble's rclpy
        if publisher_count is not None:
            return publisher_count() > 0
        return self._settled_in_graph(subscription.topic_name)

    def _settled_in_graph(self, topic: str) -> bool:
        """Whether the graph shows a publisher on ``topic``; the first time it does, after a settling pause: the
        match follows the graph within moments."""
        if self.node.count_publishers(topic) == 0:
            return False
        if topic not in self._seen_in_graph:
            self._seen_in_graph.add(topic)
            time.sleep(HUMBLE_MATCH_SETTLE_SECONDS)
        return True

    def call(self, service: str, timeout: float = 10.0) -> Trigger.Response:
        client: Any = self.node.create_client(Trigger, service)
        try:
            return self._call(client, Trigger.Request(), timeout)
        finally:
            self.node.destroy_client(client)

    def set_parameters(self, timeout: float = 10.0, **values: Any) -> list[SetParametersResult]:
        request = SetParameters.Request()
        request.parameters = [Parameter(name, value=value).to_parameter_msg() for name, value in values.items()]
        return list(self._call(self._set_parameters, request, timeout).results)

    def get_parameters(self, *names: str, timeout: float = 10.0) -> dict[str, Any]:
        reply = self._call(self._get_parameters, GetParameters.Request(names=list(names)), timeout)
        return {
            name: Parameter.from_parameter_msg(_named(name, v)).value
            for name, v in zip(names, reply.values, strict=True)
        }

    def describe_parameters(self, *names: str, timeout: float = 10.0) -> dict[str, ParameterDescriptor]:
        """The descriptors rqt_reconfigure reads (ranges, read-only, description); empty when one of ``names`` is
        not declared (the node answers with no descriptors then)."""
        reply = self._call(self._describe_parameters, DescribeParameters.Request(names=list(names)), timeout)
        return dict(zip(names, reply.descriptors, strict=True)) if len(reply.descriptors) == len(names) else {}

    def _call(self, client: Any, request: Any, timeout: float) -> Any:
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {client.srv_name} not available")
        future = client.call_async(request)
        self.wait_for(future.done, timeout, f"reply from {client.srv_name}")
        return future.result()

    def wait_ready(self, timeout: float = 120.0, process: subprocess.Popen | None = None) -> str:
        """Wait until the node has finished loading its engine (its diagnostics say ``ready`` or ``failed``);
        returns that state. Fails at once if ``process`` (the node) exits meanwhile."""
        deadline = time.monotonic() + timeout
        while (state := self.diagnostic_values().get("state", "loading")) == "loading":
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"tts_node exited with code {process.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise TimeoutError("tts_node did not finish loading its engine")
            with self._changed:
                self._changed.wait(0.2)
        return state

    def close(self) -> None:
        self._say_client.destroy()
        self._executor.shutdown(timeout_sec=2.0)
        self._spinner.join(2.0)
        self.node.destroy_node()


def _named(name: str, value):
    from rcl_interfaces.msg import Parameter as ParameterMsg

    return ParameterMsg(name=name, value=value)


def start_node(
    parameters: dict[str, Any], log_path: str | None = None, extra_env: dict | None = None, namespace: str = ""
):
    """Start ``tts_node`` as a real subprocess with ``--ros-args -p name:=value`` parameters."""
    args = [sys.executable, "-m", "ishowtts_ros.ros.node", "--ros-args"]
    if namespace:
        args += ["-r", f"__ns:={namespace}"]
    for name, value in parameters.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = "[" + ",".join(_yaml_string(v) for v in value) + "]"
        elif isinstance(value, str):
            value = _yaml_string(value)
        args += ["-p", f"{name}:={value}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    output = open(log_path, "w", encoding="utf-8") if log_path else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, env=env)


def _yaml_string(value: str) -> str:
    """A YAML single-quoted scalar, as rcl parses ``-p name:=value`` overrides."""
    return "'" + str(value).replace("'", "''") + "'"


def stop_node(process: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 10.0) -> float:
    """Signal the node and wait; returns how long it took to exit (raises if it did not)."""
    started = time.monotonic()
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    return time.monotonic() - started
