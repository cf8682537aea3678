"""Command line: ``python -u -m racetrack_fatman_wrapper run <entrypoint_path> [<entrypoint_class>]``.

Options: ``--port N`` (default: env FATMAN_PORT, else 7000), ``--host H`` (default 0.0.0.0).

The server answers ``/live`` at once and constructs the entrypoint in a background thread; ``/ready``
turns 200 when that is done. If the import or the constructor fails, the error goes to stderr (with
the traceback), ``/live`` answers 500 with the error for FATMAN_INIT_ERROR_EXIT_DELAY seconds
(default 10; so the platform can read the reason), and the process exits with status 1.
A negative delay keeps the process serving the error until it is stopped.
"""

import argparse
import os
import signal
import sys
import threading

from . import __version__
from .logs import configure_logging

DEFAULT_PORT = 7000
DEFAULT_INIT_ERROR_EXIT_DELAY = 10.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m racetrack_fatman_wrapper",
                                     description="Racetrack fatman wrapper (python3 job type)")
    parser.add_argument("--version", action="version", version=f"racetrack_fatman_wrapper {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve an entrypoint class over HTTP")
    run.add_argument("entrypoint_path", help="Python file with the entrypoint class, relative to the working directory")
    run.add_argument("entrypoint_class", nargs="?", default="",
                     help="class name; optional when the file defines exactly one class")
    run.add_argument("--port", type=int, default=None, help=f"listen port (env FATMAN_PORT, default {DEFAULT_PORT})")
    run.add_argument("--host", default=os.environ.get("FATMAN_HOST", "0.0.0.0"), help="listen address")
    return parser


def _float_env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def run(args) -> int:
    from .server import FatmanServer  # after logging is set up

    log = configure_logging()
    port = args.port if args.port is not None else int(os.environ.get("FATMAN_PORT") or DEFAULT_PORT)
    try:
        server = FatmanServer(args.entrypoint_path, args.entrypoint_class, host=args.host, port=port)
    except OSError as e:
        print(f"racetrack_fatman_wrapper: cannot listen on {args.host}:{port}: {e}", file=sys.stderr, flush=True)
        return 1

    wakeup = threading.Event()
    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("received signal %s, shutting down", signal.Signals(signum).name)
        stop.set()
        wakeup.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server.start()

    def late_init():
        server.initialize()
        wakeup.set()

    threading.Thread(target=late_init, name="fatman-init", daemon=True).start()
    wakeup.wait()

    if stop.is_set():
        server.shutdown()
        return 0
    if server.error is not None:
        sys.stderr.write(f"racetrack_fatman_wrapper: fatman initialization failed: {server.error}\n")
        if server.error_traceback:
            sys.stderr.write(server.error_traceback)
        sys.stderr.flush()
        delay = _float_env("FATMAN_INIT_ERROR_EXIT_DELAY", DEFAULT_INIT_ERROR_EXIT_DELAY)
        if delay < 0:
            stop.wait()
        elif delay > 0:
            stop.wait(delay)
        server.shutdown()
        return 1

    stop.wait()
    server.shutdown()
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
