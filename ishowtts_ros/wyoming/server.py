"""``ishowtts wyoming``: the engine as a Home Assistant Wyoming TTS server (connections: :mod:`.handler`).

Quality knobs (NFE...) are server settings, since Home Assistant only forwards the voice. The ROS node can run this
on its own engine (``use_wyoming``), so the GPU holds one model.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from urllib.parse import urlparse

from wyoming.error import Error
from wyoming.event import async_write_event

from ishowtts_ros.core.engine import Engine
from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.engines.arguments import add_engine_arguments, add_option_arguments, chosen_options, engine_config
from ishowtts_ros.engines.registry import create_engine
from ishowtts_ros.wyoming.handler import OptionsProvider, TtsEventHandler
from ishowtts_ros.wyoming.limits import Limits, RateLimitedLog

LOG = logging.getLogger(__name__)
BUSY_LOG = RateLimitedLog(LOG)
WORKERS = 8


async def serve(
    engine: Engine,
    uri: str,
    options: OptionsProvider,
    zeroconf_name: str | None = None,
    limits: Limits = Limits(),
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Serve until cancelled; ``on_listening`` runs once the socket accepts connections. A URI that cannot be
    bound raises (``OSError``, or :class:`EngineError` for a malformed one)."""
    parsed = urlparse(uri)
    # One bounded pool for every connection's synthesis: the engine lock is never held between chunks, so a
    # thread in here always makes progress, and abandoned requests are closed in it, not on the event loop.
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="wyoming-tts") as workers:
        connect = partial(_connection, ConnectionGate(limits.max_connections), engine, options, workers, limits)
        if parsed.scheme == "tcp" and parsed.port:
            server = await asyncio.start_server(connect, parsed.hostname, parsed.port, limit=limits.max_header_bytes)
        elif parsed.scheme == "unix" and parsed.path:
            server = await asyncio.start_unix_server(connect, parsed.path, limit=limits.max_header_bytes)
        else:
            raise EngineError(f"Wyoming URI {uri!r} must be tcp://host:port or unix:///path")
        async with server:
            if zeroconf_name is not None:
                await announce(parsed.hostname or "", parsed.port, zeroconf_name, parsed.scheme)
            LOG.info("Wyoming TTS server ready on %s (engine %s)", uri, engine.name)
            if on_listening is not None:
                on_listening()
            await server.serve_forever()


class ConnectionGate:
    """Counts open connections (on the event loop's one thread) and turns away those over the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def enter(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def leave(self) -> None:
        self.open -= 1


async def _connection(
    gate: ConnectionGate,
    engine: Engine,
    options: OptionsProvider,
    workers: ThreadPoolExecutor,
    limits: Limits,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    if not gate.enter():
        BUSY_LOG.warning(f"refused a Wyoming connection: {gate.limit} connections are open")
        with contextlib.suppress(ConnectionError, RuntimeError):
            await async_write_event(Error(text=f"server busy ({gate.limit} connections)", code="Busy").event(), writer)
        writer.close()
        return
    try:
        await TtsEventHandler(engine, options, workers, limits, reader, writer).run()
    finally:
        gate.leave()


async def announce(host: str, port: int | None, name: str, scheme: str) -> None:
    """Register ``NAME._wyoming._tcp.local.`` for Home Assistant with the addresses the server is reachable on:
    the URI's host, or every interface's IPv4 address when it listens on all of them. A failed announcement is a
    warning: Home Assistant can still add the server by host and port."""
    if scheme != "tcp" or not port:
        raise EngineError("--zeroconf needs a tcp://host:port URI")
    addresses = interface_addresses() if host in ("", "0.0.0.0") else [host]
    if host.startswith("127.") or host == "localhost":
        LOG.warning("zeroconf: the server listens on %s only; Home Assistant on another host cannot reach it", host)
    try:
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        info = AsyncServiceInfo(
            "_wyoming._tcp.local.",
            f"{name or socket.gethostname()}._wyoming._tcp.local.",
            addresses=[socket.inet_aton(socket.gethostbyname(address)) for address in addresses],
            port=port,
        )
        await AsyncZeroconf(ip_version=IPVersion.V4Only).async_register_service(info)
        LOG.info("announced %s on %s port %d", info.name, ", ".join(addresses), port)
    except OSError as exc:  # no multicast route
        LOG.warning("zeroconf announcement failed (%s); add the server in Home Assistant by host and port", exc)


def interface_addresses() -> list[str]:
    """Every non-loopback IPv4 address of this machine."""
    import ifaddr

    found = [
        str(ip.ip)
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str) and not ip.ip.startswith("127.")
    ]
    return found or ["127.0.0.1"]


def serve_in_thread(
    engine: Engine, uri: str, options: OptionsProvider, limits: Limits = Limits(), timeout: float = 30.0
) -> threading.Thread:
    """Run the server on its own event loop in a daemon thread (the ROS node shares its engine this way); returns
    once its own socket accepts connections, and raises :class:`EngineError` when it cannot listen (an address
    in use is this server's failure, even if another server answers there)."""
    listening = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(serve(engine, uri, options, limits=limits, on_listening=listening.set))
        except Exception as exc:
            failure.append(exc)
            LOG.error("Wyoming server on %s stopped: %s", uri, exc)
        finally:
            listening.set()

    thread = threading.Thread(target=run, name="wyoming", daemon=True)
    thread.start()
    if not listening.wait(timeout):
        raise EngineError(f"the Wyoming server did not start listening on {uri} within {timeout:.0f} s")
    if failure:
        raise EngineError(f"the Wyoming server cannot listen on {uri}: {failure[0]}")
    return thread


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ishowtts wyoming", description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="tcp://127.0.0.1:10200", help="tcp://host:port or unix:///path")
    parser.add_argument("--zeroconf", nargs="?", const="", default=None, metavar="NAME", help="announce via mDNS")
    parser.add_argument(
        "--max-text", type=int, default=Limits.max_text_chars,
        help="a one-shot text is spoken up to this many characters (cut at a sentence end); a stream's total is not "
        "limited, only its unfinished sentence",
    )  # fmt: skip
    parser.add_argument(
        "--max-connections", type=int, default=Limits.max_connections, help="clients served at once; more are refused"
    )
    parser.add_argument(
        "--idle-timeout", type=float, default=Limits.idle_timeout, help="seconds a client may send nothing"
    )
    parser.add_argument(
        "--read-timeout", type=float, default=Limits.read_timeout,
        help="seconds a client may take to finish an event it has begun",
    )  # fmt: skip
    parser.add_argument(
        "--write-timeout", type=float, default=Limits.write_timeout,
        help="seconds a client may take no audio before it is dropped",
    )  # fmt: skip
    parser.add_argument(
        "--max-audio-seconds", type=float, default=Limits.max_audio_seconds,
        help="longest audio of one request, or of one stream in total",
    )  # fmt: skip
    parser.add_argument(
        "--no-normalize", action="store_true", help="speak texts as written (no numbers, units or symbols as words)"
    )
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    add_engine_arguments(parser)
    add_option_arguments(parser, "for every request")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        engine = create_engine(args.engine, engine_config(args))
        options = chosen_options(args, engine)
        engine.resolve_options(options)
        if not args.no_warmup:
            engine.warmup()
        limits = Limits(
            max_text_chars=args.max_text,
            max_connections=args.max_connections,
            idle_timeout=args.idle_timeout,
            read_timeout=args.read_timeout,
            write_timeout=args.write_timeout,
            max_audio_seconds=args.max_audio_seconds,
            normalize=not args.no_normalize,
        )
        asyncio.run(serve(engine, args.uri, lambda: dict(options), args.zeroconf, limits))
    except (EngineError, OSError) as exc:
        LOG.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
