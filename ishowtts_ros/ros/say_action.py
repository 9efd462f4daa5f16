"""The ``tts/say`` action (``ishowtts_interfaces/action/Say``): a goal is one request in the speech service's FIFO,
next to topic text. Feedback follows its events and chunks, cancel stops this goal alone, and the result carries
the same utterance id as its events and audio.

Execution is a coroutine per goal that awaits the outcome instead of holding an executor thread, so a thousand
queued goals cost no threads and parameters, services and text keep being answered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from action_msgs.msg import GoalStatus
from ishowtts_interfaces.action import Say
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.task import Future

from ishowtts_ros.core.engine import AudioChunk
from ishowtts_ros.core.service import SpeechService, Utterance

#: Events that end a request, and the outcome each gives a goal.
TERMINAL_EVENTS = ("finished", "failed", "cancelled")
#: How long a goal whose client cancelled it waits for rclpy to mark it canceling (microseconds, normally).
CANCEL_STATE_WAIT_SECONDS = 2.0


@dataclass
class _Goal:
    """A goal being served: its handle, the future its coroutine awaits and its running figures."""

    handle: Any
    outcome: Future
    chunks: int = 0
    audio_seconds: float = 0.0
    time_to_first_audio: float = 0.0
    cancel_requested: bool = False
    submitted: bool = False  # in the speech service: a cancel from here on goes to it


class SayActionServer:
    """Serves ``tts/say`` on ``speech``; ``make_request(goal, utterance_id)`` turns a goal into an utterance and
    the reason it cannot be spoken ("" when it can)."""

    def __init__(
        self,
        node: Node,
        speech: SpeechService,
        make_request: Callable[[Any, str], tuple[Utterance, str]],
    ) -> None:
        self._node = node
        self._speech = speech
        self._make_request = make_request
        self._goals: dict[str, _Goal] = {}
        #: Goals cancelled before their coroutine registered them: they are never submitted.
        self._cancelled_early: set[str] = set()
        # Reentrant: a goal is submitted under it (so no cancel falls between registering and queueing it), and the
        # submission's ``queued`` event comes back into :meth:`on_event` on the same thread.
        self._lock = threading.RLock()
        self._server = ActionServer(
            node,
            Say,
            "tts/say",
            execute_callback=self._execute,
            goal_callback=lambda _request: GoalResponse.ACCEPT,  # bad goals are aborted with a reason instead
            cancel_callback=self._cancel,
            callback_group=ReentrantCallbackGroup(),
        )

    async def _execute(self, handle: Any) -> Any:
        utterance, refusal = self._make_request(handle.request, utterance_id_of(handle))
        goal = _Goal(handle, self._future())
        with self._lock:  # a cancel is answered before this block or after the goal is in the speech service
            self._goals[utterance.id] = goal  # before submit: a refusal emits its event at once
            if utterance.id in self._cancelled_early:
                self._cancelled_early.discard(utterance.id)
                goal.cancel_requested = True
            if goal.cancel_requested:
                self._speech.withdraw(utterance, "canceled by its client")
            elif refusal:
                self._speech.reject(utterance, refusal)
            else:
                goal.submitted = True
                self._speech.submit(utterance, interrupt=handle.request.interrupt)
        payload = await goal.outcome
        assert payload is not None  # set by the request's terminal event
        with self._lock:
            del self._goals[utterance.id]
        if payload["event"] == "finished":
            handle.succeed()
        elif payload["event"] == "cancelled" and goal.cancel_requested and await self._canceling(handle):
            handle.canceled()
        else:
            handle.abort()
        return self._result(utterance.id, goal, payload)

    def _cancel(self, handle: Any) -> CancelResponse:
        """Cancel this goal, at any point of its life: before its coroutine has run (it is then never submitted),
        queued or speaking (the speech service ends it within one chunk); refused once it has ended. A cancel
        accepted is a cancel done: the goal ends canceled."""
        utterance_id = utterance_id_of(handle)
        with self._lock:
            goal = self._goals.get(utterance_id)
            if goal is None:
                if handle.status in (GoalStatus.STATUS_SUCCEEDED, GoalStatus.STATUS_ABORTED,
                                     GoalStatus.STATUS_CANCELED):  # fmt: skip
                    return CancelResponse.REJECT
                self._cancelled_early.add(utterance_id)
                return CancelResponse.ACCEPT
            if goal.outcome.done():
                return CancelResponse.REJECT
            goal.cancel_requested = True
            if not goal.submitted or self._speech.cancel(utterance_id, "canceled by its client"):
                return CancelResponse.ACCEPT
            goal.cancel_requested = False  # it ended meanwhile: its own outcome stands
            return CancelResponse.REJECT

    async def _canceling(self, handle: Any) -> bool:
        """Wait (without holding a thread) until rclpy has moved the goal to CANCELING, which it does just after
        ``_cancel`` returns; only from there is CANCELED a legal end."""
        waited = 0.0
        while not handle.is_cancel_requested and waited < CANCEL_STATE_WAIT_SECONDS:
            await self._future(delay=0.01)
            waited += 0.01
        return bool(handle.is_cancel_requested)

    # --- from the speech service ------------------------------------------------------------------------------
    # Lookups here take no lock: the speech service calls these while holding its own lock, and :meth:`_cancel`
    # holds this one while calling the service (one lock order, no deadlock); a dict read is atomic.
    def on_event(self, name: str, payload: dict[str, Any]) -> None:
        goal = self._goals.get(payload["id"])
        if goal is None:
            return
        if name in TERMINAL_EVENTS:
            goal.outcome.set_result(payload)
        elif name == "queued":
            self._feedback(goal, payload["id"], Say.Feedback.STATE_QUEUED, queue_position=payload.get("ahead", 0))
        elif name == "started":
            self._feedback(goal, payload["id"], Say.Feedback.STATE_SPEAKING)
        elif name == "first_audio":
            goal.time_to_first_audio = float(payload["time_to_first_audio"])

    def on_chunk(self, utterance: Utterance, chunk: AudioChunk) -> None:
        goal = self._goals.get(utterance.id)
        if goal is None:
            return
        goal.chunks += 1
        goal.audio_seconds += len(chunk.samples) / chunk.sample_rate
        self._feedback(goal, utterance.id, Say.Feedback.STATE_SPEAKING)

    # --- helpers ----------------------------------------------------------------------------------------------
    def _feedback(self, goal: _Goal, utterance_id: str, state: int, queue_position: int = 0) -> None:
        goal.handle.publish_feedback(
            Say.Feedback(
                state=state,
                utterance_id=utterance_id,
                queue_position=queue_position,
                chunks=goal.chunks,
                audio_seconds=goal.audio_seconds,
                time_to_first_audio=goal.time_to_first_audio,
            )
        )

    @staticmethod
    def _result(utterance_id: str, goal: _Goal, payload: dict[str, Any]) -> Any:
        finished = payload["event"] == "finished"
        reason = "" if finished else str(payload.get("error") or payload.get("reason") or payload["event"])
        return Say.Result(
            success=finished,
            reason=reason,
            utterance_id=utterance_id,
            chunks=goal.chunks,
            audio_seconds=float(payload.get("audio_seconds", goal.audio_seconds)),
            synthesis_seconds=float(payload.get("synthesis_seconds", 0.0)),
            rtf=float(payload.get("rtf", 0.0)),
            time_to_first_audio=float(payload.get("time_to_first_audio", goal.time_to_first_audio)),
        )

    def _future(self, delay: float | None = None) -> Future:
        """An rclpy future that wakes the node's executor when it completes (set from the speech thread, or by a
        timer after ``delay`` seconds), so the coroutine awaiting it resumes at once."""
        future: Future = Future(executor=self._node.executor)
        future.add_done_callback(lambda _future: None)  # a done callback is what makes the executor wake
        if delay is not None:
            timer = threading.Timer(delay, future.set_result, (None,))
            timer.daemon = True
            timer.start()
        return future

    def destroy(self) -> None:
        self._server.destroy()


def utterance_id_of(handle: Any) -> str:
    """The utterance id of a goal: its goal UUID in hex, so a client knows it as soon as it sends the goal."""
    return bytes(handle.goal_id.uuid).hex()
