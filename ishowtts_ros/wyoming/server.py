"""``ishowtts wyoming``: the engine as a Home Assistant Wyoming TTS server (connections: :mod:`.handler`).

Quality knobs (NFE...) are server settings, since Home Assistant only forwards the voice. The ROS node can run this
on its own engine (``use_wyoming``), so the GPU holds one model.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from urllib.parse import urlparse

from wyoming.server import AsyncServer

from ishowtts_ros.core.engine import Engine
from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.engines.arguments import add_engine_arguments, engine_config
from ishowtts_ros.engines.registry import create_engine
from ishowtts_ros.wyoming.handler import OptionsProvider, TtsEventHandler

LOG = logging.getLogger(__name__)
WORKERS = 8


async def serve(engine: Engine, uri: str, options: OptionsProvider, zeroconf_name: str | None = None) -> None:
    """Serve until cancelled."""
    server = AsyncServer.from_uri(uri)
    if zeroconf_name is not None:
        from wyoming.zeroconf import HomeAssistantZeroconf

        parsed = urlparse(uri)
        if parsed.scheme != "tcp" or not parsed.port:
            raise EngineError("--zeroconf needs a tcp://host:port URI")
        try:
            discovery = HomeAssistantZeroconf(port=parsed.port, name=zeroconf_name or None)
            await discovery.register_server()
            LOG.info("announced _wyoming._tcp.local. as %s", discovery.name)
        except OSError as exc:  # no multicast route: still serve, Home Assistant can add host and port by hand
            LOG.warning("zeroconf announcement failed (%s); add the server in Home Assistant by host and port", exc)
    LOG.info("Wyoming TTS server ready on %s (engine %s)", uri, engine.name)
    # One bounded pool for every connection's synthesis: the engine lock is never held between chunks, so a
    # thread in here always makes progress, and abandoned requests are closed in it, not on the event loop.
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="wyoming-tts") as workers:
        await server.run(partial(TtsEventHandler, engine, options, workers))


def serve_in_thread(engine: Engine, uri: str, options: OptionsProvider, timeout: float = 10.0) -> threading.Thread:
    """Run the server on its own event loop in a daemon thread (the ROS node shares its engine this way); returns
    once it accepts connections, so whoever reports "ready" next is telling the truth."""

    def run() -> None:
        try:
            asyncio.run(serve(engine, uri, options))
        except Exception:  # report and let the node keep serving ROS
            LOG.exception("Wyoming server on %s stopped", uri)

    thread = threading.Thread(target=run, name="wyoming", daemon=True)
    thread.start()
    _wait_listening(uri, thread, timeout)
    return thread


def _wait_listening(uri: str, thread: threading.Thread, timeout: float) -> None:
    parsed = urlparse(uri)
    deadline = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < deadline:
        try:
            if parsed.scheme == "tcp" and parsed.port is not None:
                host = "127.0.0.1" if parsed.hostname in ("0.0.0.0", "", None) else parsed.hostname
                socket.create_connection((host, parsed.port), timeout=1).close()
                return
            if parsed.scheme == "unix" and os.path.exists(parsed.path):
                return
        except OSError:
            pass
        time.sleep(0.05)
    LOG.warning("Wyoming server on %s is not accepting connections yet", uri)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ishowtts wyoming", description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="tcp://127.0.0.1:10200", help="tcp://host:port or unix:///path")
    parser.add_argument("--zeroconf", nargs="?", const="", default=None, metavar="NAME", help="announce via mDNS")
    parser.add_argument("--nfe", type=int, default=None, help="flow steps for every request (f5)")
    parser.add_argument("--seed", type=int, default=None, help="fixed noise seed (repeatable audio)")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    add_engine_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        engine = create_engine(args.engine, engine_config(args))
        options = engine.supported_subset({"nfe_step": args.nfe, "seed": args.seed})
        engine.resolve_options(options)
        if not args.no_warmup:
            engine.warmup()
        asyncio.run(serve(engine, args.uri, lambda: dict(options), args.zeroconf))
    except EngineError as exc:
        LOG.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
