"""``tts_node``: the ROS 2 adapter over the engine core.

Serves the ``tts/say`` action and subscribes ``tts/text`` (and the ``text_topics`` parameter's topics) into one
queue; publishes ``ishowtts_interfaces/AudioChunk`` on ``tts/audio``, lifecycle events on ``tts/events``, RTF on
``tts/rtf``, the speaking state on ``tts/speaking`` and diagnostics on ``/diagnostics``; services ``tts/stop``,
``tts/list_voices`` and ``tts/reload_voices``. Synthesis runs in the speech service's own thread, so the executor
stays free for parameters, services, goals and new text.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, NoReturn

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from ishowtts_interfaces.msg import AudioChunk as AudioChunkMsg
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException, InvalidTopicNameException
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import try_shutdown
from std_msgs.msg import Bool, Float32, String
from std_srvs.srv import Trigger

from ishowtts_ros.core.engine import AudioChunk, Engine, EngineConfig, TextLimit
from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.core.options import OptionSpec
from ishowtts_ros.core.playback import AudioPlayer
from ishowtts_ros.core.plugin import EnginePlugin
from ishowtts_ros.core.service import SpeechService, Utterance
from ishowtts_ros.core.text import EMPTY_TEXT, normalize_text
from ishowtts_ros.engines.registry import choose_engine
from ishowtts_ros.ros.audio_msg import AUDIO_QOS, EVENTS_QOS, SPEAKING_QOS, TEXT_QOS, encode_chunk
from ishowtts_ros.ros.ownership import NameClaim
from ishowtts_ros.ros.parameters import live_parameters, startup_parameters
from ishowtts_ros.ros.say_action import SayActionServer

NODE_NAME = "ishowtts"
#: How often the executor's wait returns, so a signal is seen that soon (rcl_wait does not return for one).
SIGNAL_CHECK_SECONDS = 0.2


class TtsNode(Node):
    """Speech for a robot: text in, audio and diagnostics out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for name, (default, desc) in startup_parameters().items():
            self._declare(name, default, desc)
        #: The chosen engine's plugin (None: the name is unknown, said when loading fails) and its option specs,
        #: read without importing the engine: its options are this node's live parameters from the start.
        self.plugin, self.plugin_error = self._choose_engine()
        self.options = dict(self.plugin.options) if self.plugin is not None else {}
        for name, (default, desc) in live_parameters(self.options).items():
            self._declare(name, default, desc)
        # Humble has no post-set callback: values are validated and, when all pass, applied in this one callback.
        self.add_on_set_parameters_callback(self._set_parameters)

        self.audio_pub = self.create_publisher(AudioChunkMsg, "tts/audio", AUDIO_QOS)
        self.events_pub = self.create_publisher(String, "tts/events", EVENTS_QOS)
        self.rtf_pub = self.create_publisher(Float32, "tts/rtf", 10)
        self.speaking_pub = self.create_publisher(Bool, "tts/speaking", SPEAKING_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.speaking_pub.publish(Bool(data=False))

        self.engine: Engine | None = None
        self.state = "loading"  # -> "ready" or "failed"; the node answers ROS in every state
        self.wyoming_error = ""
        self.texts_received = 0  # every text message the subscriptions delivered: each ends in one terminal event
        self._received_lock = threading.Lock()
        self.duplicate = ""  # set when another node has this node's fully qualified name
        self.speech = SpeechService(
            None,
            queue_size=self.get_parameter("queue_size").value,
            on_event=self._on_event,
            on_chunk=self._on_chunk,
            on_speaking=lambda speaking: self.speaking_pub.publish(Bool(data=speaking)),
            player=self._make_player() if self.get_parameter("playback").value else None,
            loading=True,
        )
        self.say_server = SayActionServer(self, self.speech, self._goal_request)
        self._text_subscriptions: list[Any] = []
        self._subscribe_text()
        self.name_claim = NameClaim(self, self._yield_name)
        service_group = MutuallyExclusiveCallbackGroup()
        self.create_service(Trigger, "tts/stop", self._stop, callback_group=service_group)
        self.create_service(Trigger, "tts/list_voices", self._list_voices, callback_group=service_group)
        self.create_service(Trigger, "tts/reload_voices", self._reload_voices, callback_group=service_group)
        self.create_timer(1.0, self.publish_diagnostics, callback_group=MutuallyExclusiveCallbackGroup())
        # Loading (minutes on an Orin with a cold compile cache) runs beside the executor: parameters, services
        # and diagnostics answer from the first second, and text that arrives meanwhile is queued.
        self._loader = threading.Thread(target=self._load_engine, name="tts-engine-load", daemon=True)
        self._loader.start()

    def _declare(self, name: str, default: Any, desc: ParameterDescriptor) -> None:
        """Declare a parameter; a launch value it cannot take (out of its range, of the wrong type) is refused at
        start with an error naming it, and the default is used, so the node still speaks."""
        try:
            self.declare_parameter(name, default, desc)
        except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
            self.get_logger().error(f"launch value of {name} refused ({exc}); using the default {default!r}")
            self.declare_parameter(name, default, desc, ignore_override=True)

    def _subscribe_text(self) -> None:
        # One callback at a time for every text topic: texts are queued in the order they were published (with a
        # reentrant group, two callbacks of one topic ran at once and swapped places, and with ``interrupt`` the
        # older text could cancel the newer). Queueing takes microseconds: nothing else waits for it.
        text_group = MutuallyExclusiveCallbackGroup()
        self._text_subscriptions.append(
            self.create_subscription(
                String, "tts/text", self._text_callback(None, "tts/text"), TEXT_QOS, callback_group=text_group
            )
        )
        for entry in self.get_parameter("text_topics").value:
            if entry.strip():
                topic, _, voice = (part.strip() for part in entry.partition("="))
                try:
                    subscription = self.create_subscription(
                        String, topic, self._text_callback(voice or None, topic), TEXT_QOS, callback_group=text_group
                    )
                except (InvalidTopicNameException, ValueError) as exc:
                    self.get_logger().error(f"text_topics entry {entry!r} refused: {exc}")
                    continue
                self._text_subscriptions.append(subscription)
                self.get_logger().info(f"also listening on {topic} (voice {voice or 'current'})")

    def _config(self) -> EngineConfig:
        return EngineConfig(
            voices_file=self.get_parameter("voices_file").value or None,
            device=self.get_parameter("device").value,
            precision=self.get_parameter("precision").value,
            checkpoint=self.get_parameter("checkpoint").value,
            vocoder=self.get_parameter("vocoder").value,
            compile=None if self.get_parameter("compile").value else False,
            vocab=self.get_parameter("vocab").value,
            model=self.get_parameter("model").value,
        )

    def _choose_engine(self) -> tuple[EnginePlugin | None, str]:
        """The plugin of the ``engine`` parameter (``auto``: the best one available here), or why there is none."""
        name = self.get_parameter("engine").value
        try:
            plugin, passed_over = choose_engine(name, self._config())
        except EngineError as exc:
            return None, str(exc)
        if passed_over:
            self.get_logger().warning(f"engine {name}: using {plugin.name} because {passed_over}")
        return plugin, ""

    def _load_engine(self) -> None:
        """Build and warm up the engine, then serve; a node whose engine fails stays up and reports ERROR."""
        name = self.plugin.name if self.plugin is not None else self.get_parameter("engine").value
        self.get_logger().info(f"loading engine {name}...")
        try:
            engine = self._build_engine()
        except Exception as exc:
            reason = str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"engine {name} failed to load: {reason}")
            self.state = "failed"
            self.speech.load_failed(reason)
            self.publish_diagnostics()
            return
        self.engine = engine  # before Wyoming starts: its requests take this engine's options
        if self.get_parameter("use_wyoming").value:
            self._serve_wyoming(engine)
        self.speech.attach(engine)
        self.state = "ready"
        self.get_logger().info(f"ready: {json.dumps(engine.describe())}")
        self.publish_diagnostics()

    def _serve_wyoming(self, engine: Engine) -> None:
        """Start the Wyoming server on this engine; if it cannot listen, ROS speech still works and diagnostics
        say ERROR with the reason."""
        from ishowtts_ros.wyoming.server import serve_in_thread

        uri = self.get_parameter("wyoming_uri").value
        try:
            serve_in_thread(engine, uri, self.current_options)
        except EngineError as exc:
            self.wyoming_error = str(exc)
            self.get_logger().error(f"{exc}; ROS speech goes on without it")
            return
        self.get_logger().info(f"Wyoming TTS server for Home Assistant on {uri} (sharing this node's engine)")

    def _build_engine(self) -> Engine:
        if self.plugin is None:
            raise EngineError(self.plugin_error)
        engine = self.plugin.load()(self._config())
        voice = self.get_parameter("voice").value
        if voice and voice not in engine.registry:
            default = engine.registry.default
            self.get_logger().error(
                f"voice {voice!r} is not in {engine.registry.source}; speaking with its default {default!r} "
                f"(the voice parameter is set to it; voices: {', '.join(engine.registry.names())})"
            )
            self.set_parameters([Parameter("voice", value=default)])
        if self.get_parameter("warmup").value:
            self.get_logger().info("warming up...")
            engine.warmup()
        return engine

    def _make_player(self) -> AudioPlayer:
        return AudioPlayer(self.get_parameter("playback_device").value, self.get_parameter("volume").value)

    # --- parameters -------------------------------------------------------------------------------------------
    def _set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Refuse, with a reason, any value the engine could not use (ranges and types are checked by rclpy);
        apply the set when every value passes."""
        for parameter in parameters:
            reason = self._refusal(parameter)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        self._apply_parameters(parameters)
        return SetParametersResult(successful=True)

    def _refusal(self, parameter: Parameter) -> str:
        spec = self.options.get(parameter.name)
        if spec is not None:
            try:
                spec.validate(parameter.value)
            except EngineError as exc:
                return str(exc)
        if (
            parameter.name == "voice"
            and parameter.value
            and self.engine is not None
            and parameter.value not in self.engine.registry
        ):
            names = ", ".join(self.engine.registry.names())
            return f"unknown voice {parameter.value!r}; available: {names}"
        if parameter.name == "volume" and not math.isfinite(parameter.value):
            return "volume must be finite"
        return ""

    def _apply_parameters(self, parameters: list[Parameter]) -> None:
        for parameter in parameters:
            if parameter.name == "playback":
                if parameter.value and self.speech.player is None:
                    self.speech.player = self._make_player()
                elif not parameter.value and self.speech.player is not None:
                    player, self.speech.player = self.speech.player, None
                    player.close()
            elif parameter.name == "volume" and self.speech.player is not None:
                self.speech.player.volume = parameter.value
            self.get_logger().info(f"{parameter.name} = {parameter.value!r} (applies from the next utterance)")

    def current_options(self) -> dict[str, Any]:
        values = {name: self.get_parameter(name).value for name in self.options}
        return self.engine.supported_subset(values) if self.engine is not None else values

    # --- text in ----------------------------------------------------------------------------------------------
    def _text_callback(self, voice: str | None, topic: str):
        def callback(message: String) -> None:
            self.speak(message.data, voice, topic)

        return callback

    def speak(self, text: str, voice: str | None = None, source: str = "") -> None:
        with self._received_lock:
            self.texts_received += 1
        utterance, refusal = self.request(text, voice, source)
        if refusal:
            self.speech.reject(utterance, refusal)
        else:
            self.speech.submit(utterance, interrupt=self.get_parameter("interrupt").value)

    def request(
        self,
        text: str,
        voice: str | None,
        source: str,
        overrides: dict[str, Any] | None = None,
        utterance_id: str | None = None,
    ) -> tuple[Utterance, str]:
        """The utterance for a request (the node's current options, with ``overrides``) and why it cannot be
        spoken ("" when it can): topic text and action goals are checked alike."""
        default_voice = self.engine.registry.default if self.engine is not None else ""
        utterance = Utterance(
            text=text,
            voice=voice or self.get_parameter("voice").value or default_voice,
            options={**self.current_options(), **(overrides or {})},
            source=source,
            max_audio_seconds=self.get_parameter("max_audio_seconds").value,
            normalize=self.get_parameter("normalize_text").value,
        )
        if utterance_id:
            utterance.id = utterance_id
        if self.name_claim.older is not None:
            return utterance, self.duplicate
        limit = TextLimit(self.get_parameter("max_text_length").value, "max_text_length")
        try:
            if self.engine is not None:  # the engine's own check, as the Wyoming server and the CLI make it
                options = self.engine.supported_subset(utterance.options)
                self.engine.prepare(text, utterance.voice, options, normalize=utterance.normalize, text_limit=limit)
            else:  # still loading: what can be checked without it (the engine checks the rest when it speaks)
                _check_while_loading(text, overrides or {}, limit, self.options)
        except EngineError as exc:
            return utterance, str(exc)
        return utterance, ""

    def _goal_request(self, goal: Any, utterance_id: str) -> tuple[Utterance, str]:
        """A ``Say`` goal as a request: 0 for ``nfe_step`` or ``speed`` means the node's parameter."""
        overrides: dict[str, Any] = {}
        if goal.nfe_step != 0:
            overrides["nfe_step"] = goal.nfe_step
        if goal.speed != 0.0:
            overrides["speed"] = goal.speed
        return self.request(goal.text, goal.voice or None, "tts/say", overrides, utterance_id)

    # --- out --------------------------------------------------------------------------------------------------
    def _on_event(self, name: str, payload: dict[str, Any]) -> None:
        self.events_pub.publish(String(data=json.dumps(payload, ensure_ascii=False)))
        self.say_server.on_event(name, payload)
        if name == "finished":
            self.rtf_pub.publish(Float32(data=float(payload["rtf"])))
        if name in ("finished", "failed", "cancelled"):
            self.publish_diagnostics()

    def _on_chunk(self, utterance: Utterance, chunk: AudioChunk) -> None:
        self.audio_pub.publish(encode_chunk(chunk, self.get_clock().now().to_msg()))
        self.say_server.on_chunk(utterance, chunk)

    def publish_diagnostics(self) -> None:
        self._check_duplicate()
        stats = self.speech.stats.summary()
        describe = self.engine.describe() if self.engine is not None else {"engine": self.get_parameter("engine").value}
        depth = self.speech.queue_depth
        queue_size = self.speech.queue_size
        if self.state == "loading":
            level, message = DiagnosticStatus.OK, f"loading engine {self.get_parameter('engine').value} ..."
        elif self.engine is None:
            level, message = DiagnosticStatus.ERROR, f"engine failed to load: {self.speech.engine_error}"
        elif self.duplicate:
            level, message = DiagnosticStatus.ERROR, self.duplicate
        elif self.wyoming_error:
            level, message = DiagnosticStatus.ERROR, self.wyoming_error
        elif depth >= queue_size:
            level, message = DiagnosticStatus.WARN, f"queue full ({depth}/{queue_size})"
        elif stats["last_rtf"] > 1.0:
            level, message = DiagnosticStatus.WARN, f"slower than real time (RTF {stats['last_rtf']:.2f})"
        else:
            level, message = DiagnosticStatus.OK, "speaking" if self.speech.busy else "idle"
        values = {
            "state": self.state,
            **describe,
            "voice": self.get_parameter("voice").value or (self.engine.registry.default if self.engine else ""),
            **self.current_options(),
            **{key: f"{value:.4f}" if isinstance(value, float) else value for key, value in stats.items()},
            "texts_received": self.texts_received,
            "queue_depth": depth,
            "queue_size": queue_size,
            "last_error": self.speech.stats.last_error,
            "playback": "off" if self.speech.player is None else ("on" if self.speech.player.available else "failed"),
            "gpu_memory_mib": self._gpu_memory_mib(),
        }
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: text to speech",
            message=message,
            hardware_id=str(describe.get("device", "cpu")),
            values=[KeyValue(key=key, value=str(value)) for key, value in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def _gpu_memory_mib(self) -> str:
        device = getattr(self.engine, "device", None)
        if device is None or getattr(device, "type", "") != "cuda":
            return "n/a"
        import torch

        return f"{torch.cuda.memory_allocated(device) / 2**20:.0f}"

    # --- services ---------------------------------------------------------------------------------------------
    def _stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        cancelled = self.speech.stop()
        response.success = True
        response.message = f"cancelled {cancelled} request(s)"
        return response

    def _not_ready(self) -> str:
        if self.state == "loading":
            return "the engine is still loading"
        return f"engine failed to load: {self.speech.engine_error}"

    def _list_voices(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.engine is None:
            response.success, response.message = False, self._not_ready()
            return response
        default = self.engine.registry.default
        voices = [{**voice.to_dict(), "default": voice.name == default} for voice in self.engine.voices()]
        response.success, response.message = True, json.dumps(voices, ensure_ascii=False)
        return response

    def _check_duplicate(self) -> None:
        """A node with this node's name that claimed it later is still on the graph: say so (it stops serving)."""
        me = (self.get_name(), self.get_namespace())
        if self.duplicate or not self.name_claim.younger or self.get_node_names_and_namespaces().count(me) < 2:
            return
        self.duplicate = (
            f"another node is named {self.get_fully_qualified_name()}; this one started first and keeps serving, "
            "the other has stopped: give each node its own name or namespace"
        )
        self.get_logger().error(self.duplicate)

    def _yield_name(self, older: dict[str, Any]) -> None:
        """An older node has this node's name: stop taking texts and goals (both would speak each one), say why."""
        started = time.strftime("%H:%M:%S", time.localtime(older["since"]))
        self.duplicate = (
            f"another node named {self.get_fully_qualified_name()} has served since {started}: this one stopped "
            "serving text and goals; give each node its own name or namespace"
        )
        self.get_logger().error(self.duplicate)
        for subscription in self._text_subscriptions:
            self.destroy_subscription(subscription)
        self._text_subscriptions.clear()
        self.speech.stop()
        self.publish_diagnostics()

    def _reload_voices(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.engine is None:
            response.success, response.message = False, self._not_ready()
            return response
        try:
            self.engine.reload_voices(keep=self.get_parameter("voice").value or None)
        except EngineError as exc:
            response.success, response.message = False, f"kept the previous voices: {exc}"
            self.get_logger().error(response.message)
            return response
        response.success = True
        response.message = f"{len(self.engine.voices())} voices from {self.engine.registry.source}"
        return response

    def shutdown(self) -> None:
        """Cancel everything, say ``speaking: false``, stop the speech thread and release the engine, within about two
        seconds in any state: a chunk still being synthesized, or a shape the background compile is still compiling,
        is left to its daemon thread rather than waited for (the process ends right after, :func:`main`)."""
        self.speech.close(timeout=0.5)
        self.speaking_pub.publish(Bool(data=False))
        if self.engine is not None:
            self.engine.close()

    def close(self, executor: Executor) -> None:
        """:meth:`shutdown`, then stop ``executor`` and destroy the node, logging how long it took."""
        started = time.monotonic()
        self.get_logger().info("shutting down")
        self.shutdown()
        executor.shutdown(timeout_sec=0.5)
        self.destroy_node()
        self.get_logger().info(f"shut down in {time.monotonic() - started:.2f} s")


def _check_while_loading(
    text: str, overrides: dict[str, Any], limit: TextLimit, options: Mapping[str, OptionSpec]
) -> None:
    """The checks of :meth:`Engine.prepare` that need no engine, with its messages: length, something left to say,
    the options' ranges."""
    if len(text) > limit.chars:
        raise EngineError(f"text is {len(text)} characters; {limit.setting} is {limit.chars}")
    if not normalize_text(text):
        raise EngineError(EMPTY_TEXT)
    for name, value in overrides.items():
        if name in options:  # a goal field the engine does not take is left out, as the engine leaves it
            options[name].validate(value)


def main(args: list[str] | None = None) -> NoReturn:
    """Spin until Ctrl-C or SIGTERM (``ros2 launch`` sends them), then cancel, publish ``speaking: false`` and exit,
    in the shape of ros2/demos. rclpy's own signal handler would shut ROS down before the node could publish that,
    so both signals raise KeyboardInterrupt here instead, and a timer wakes the executor's wait to let it through."""
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s]: %(message)s")
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    executor = MultiThreadedExecutor(num_threads=4)
    node: TtsNode | None = None
    try:
        node = TtsNode()
        node.create_timer(SIGNAL_CHECK_SECONDS, lambda: None)
        rclpy.spin(node, executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the shutdown short
            signal.signal(signum, signal.SIG_IGN)
        if node is not None:
            node.close(executor)
        try_shutdown()
    # ROS is shut down and `speaking: false` is out. A chunk still being synthesized, a shape being compiled or an
    # engine still loading is abandoned: interpreter teardown would wait on torch's threads for seconds.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
