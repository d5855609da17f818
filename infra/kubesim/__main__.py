"""The Kubernetes API simulator as a process.

`python -m infra.kubesim --port PORT --scenario FILE.json [--tls-dir DIR] [--victoria-url URL]`
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import ssl
import sys
import threading
from pathlib import Path
from types import FrameType

from werkzeug.serving import WSGIRequestHandler, make_server

from infra.kubesim.auth import Authorizer
from infra.kubesim.cluster import Cluster
from infra.kubesim.exposition import Exposition
from infra.kubesim.metrics import VictoriaWriter
from infra.kubesim.server import Simulator
from infra.kubesim.tls import ensure_certs

log = logging.getLogger("kubesim")


class QuietHandler(WSGIRequestHandler):
    """No access log on stderr (the request log is at /_sim/requests)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.kubesim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scenario", type=Path, required=True)
    parser.add_argument("--tls-dir", type=Path, help="serve HTTPS with ca.crt/server.* from here")
    parser.add_argument("--victoria-url", help="write CPU counters into this VictoriaMetrics")
    parser.add_argument("--tick", type=float, default=0.2, help="controller period in seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    scenario = json.loads(args.scenario.read_text())
    cluster = Cluster(scenario)
    app = Simulator(cluster, Authorizer.from_scenario(scenario))

    ssl_context = None
    if args.tls_dir:
        _, cert, key = ensure_certs(args.tls_dir)
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.load_cert_chain(cert, key)

    stop = threading.Event()
    writer = None
    if args.victoria_url:
        writer = VictoriaWriter(args.victoria_url, cluster, seed=scenario.get("seed"))
        lines = writer.backfill(cluster.backfill_minutes)
        log.info("backfilled %d series, %.0f minutes", lines, cluster.backfill_minutes)
        writer.start(cluster.metrics_interval)
    app.cadvisor = Exposition(cluster, writer, seed=scenario.get("seed")).render

    def controller() -> None:
        while not stop.wait(args.tick):
            try:
                cluster.tick()
            except Exception:
                log.exception("controller tick failed")

    threading.Thread(target=controller, name="kubesim-controller", daemon=True).start()
    server = make_server(
        args.host,
        args.port,
        app,
        threaded=True,
        ssl_context=ssl_context,
        request_handler=QuietHandler,
    )

    def shutdown(signum: int, frame: FrameType | None) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    scheme = "https" if ssl_context else "http"
    log.info("kube API simulator at %s://%s:%d", scheme, args.host, args.port)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        stop.set()
        if writer is not None:
            writer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
