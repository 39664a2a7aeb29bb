"""The ``agentwatch`` command line."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from ._settings import ConfigError, ServiceSettings

_DESCRIPTION = """\
agentwatch watches what AI agents do (OpenTelemetry spans), detects when an agent deviates
from its normal behavior (tool-call loops, rate spikes), alerts people and opens the agent's
circuit breaker through a signed webhook."""

_SERVE_EPILOG = """\
environment:
  AGENTWATCH_WEBHOOK_SECRET     Standard Webhooks secret (whsec_ + base64) shared with agents;
                                without it no control webhook is sent (alerts still are)
  AGENTWATCH_SLACK_WEBHOOK_URL  Slack incoming-webhook URL for notifications
  AGENTWATCH_CLICKHOUSE_DSN     a ClickHouse server instead of the embedded engine
  AGENTWATCH_CLICKHOUSE_CLUSTER  apply the schema ON CLUSTER this name (with a server DSN)
  AGENTWATCH_BREAKER_MIN_SEVERITY  least severity that opens a breaker (default critical)

example:
  agentwatch serve --data-dir ./agentwatch-data
  # then point agents at it: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
"""


class _Version(argparse.Action):
    """``--version``: read when asked, so that ``--help`` does not import the detectors."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from ._metrics import detectors_build, version

        print(f"agentwatch {version()} (detectors {detectors_build()})")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentwatch",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    parser.add_argument(
        "--version",
        action=_Version,
        help="print the version and whether the detectors run compiled, and exit",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the service: OTLP/HTTP ingest, detection, alerts, REST API",
        description="Run the agentwatch service in the foreground until Ctrl-C.",
        epilog=_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--config", type=Path, help="YAML file: settings, alerting:, remediation:")
    serve.add_argument("--data-dir", type=Path, help="embedded ClickHouse and state live here")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--otlp-http-port", type=int, help="OTLP/HTTP port (default 4318)")
    serve.add_argument("--otlp-grpc-port", type=int, help="OTLP/gRPC port (default 4317; -1 off)")
    serve.add_argument("--api-port", type=int, help="REST API port (default 8080)")
    serve.add_argument("--clickhouse", dest="clickhouse_dsn", help="ClickHouse server DSN")
    serve.add_argument(
        "--clickhouse-cluster",
        metavar="NAME",
        help="apply the schema ON CLUSTER NAME (Replicated tables under Distributed ones; "
        "see agentwatch migrate --help); needs --clickhouse",
    )
    serve.add_argument("--slack-webhook-url", help="Slack incoming-webhook URL")
    serve.add_argument("--ttl-days", type=int, help="drop rows older than this (0 keeps all)")

    dashboards = commands.add_parser(
        "dashboards",
        help="Grafana dashboards and provisioning as code",
        description="Grafana dashboards and provisioning files, built with grafana-foundation-sdk.",
    )
    dashboard_commands = dashboards.add_subparsers(dest="dashboards_command", required=True)
    export = dashboard_commands.add_parser(
        "export",
        help="write the dashboards and provisioning files to a directory",
        description=_dashboards_help(),
    )
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")

    backtest = commands.add_parser(
        "backtest",
        help=(
            "replay detectors over labelled data and score them (NAB time series, sessions, "
            "simulated fleets with faults, ClickHouse history)"
        ),
        description=(
            "Run agentwatch's detectors offline over labelled data and print how they score:\n"
            "NAB's profiles for time series, precision/recall/F1 for sessions of event keys,\n"
            "per-fault-type precision/recall/F1 and detection delay for simulated fleets."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from ._backtest import add_backtest_arguments

    add_backtest_arguments(backtest)

    migrate = commands.add_parser(
        "migrate", help="print or apply the ClickHouse schema (single node or ON CLUSTER)"
    )
    from ._cluster import add_migrate_arguments

    add_migrate_arguments(migrate)

    from ._postmortem import POSTMORTEM_EPILOG, POSTMORTEM_HELP, add_postmortem_arguments
    from ._query import QUERY_EPILOG, QUERY_HELP, add_query_arguments

    query = commands.add_parser(
        "query",
        help=QUERY_HELP,
        description=(
            "Run one read-only ClickHouse statement through the service's API (or --data-dir "
            "when no service runs)."
        ),
        epilog=QUERY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_query_arguments(query)
    postmortem = commands.add_parser(
        "postmortem",
        help=POSTMORTEM_HELP,
        description=(
            "An agent's post-mortem: actions by tool, heartbeats and gaps, state transitions, "
            "anomalies with evidence and baseline, deliveries, breaker transitions, rollbacks, "
            "RTO/RPO."
        ),
        epilog=POSTMORTEM_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_postmortem_arguments(postmortem)

    demo = commands.add_parser(
        "demo",
        help="run the service with a simulated fleet and one runaway agent",
        description=(
            "Start agentwatch on embedded ClickHouse, run a fleet of simulated agents through\n"
            "the real SDK, make one run away (a tool-call loop, then a rate spike), and show it\n"
            "detected, alerted and stopped, with latencies and a post-mortem query."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--agents", type=int, default=20, help="fleet size (default 20)")
    demo.add_argument("--warmup-s", type=float, default=15.0, help="normal traffic first")
    demo.add_argument("--data-dir", type=Path, help="keep the data here (default: a temp dir)")
    demo.add_argument("--seed", type=int, default=7, help="randomness of the fleet")
    return parser


def _dashboards_help() -> str:
    from agentwatch.dashboards import HELP

    return str(HELP)


def _export_dashboards(out: Path) -> int:
    from agentwatch.dashboards import export

    written = export(out)
    for path in written:
        print(path)
    print(f"wrote {len(written)} files; mount {out} at /etc/grafana/provisioning", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ._runner import RunningService
    from ._settings import settings_summary

    settings = ServiceSettings.from_env(
        os.environ,
        config_file=args.config,
        data_dir=args.data_dir,
        host=args.host,
        otlp_http_port=args.otlp_http_port,
        otlp_grpc_port=args.otlp_grpc_port,
        api_port=args.api_port,
        clickhouse_dsn=args.clickhouse_dsn,
        clickhouse_cluster=args.clickhouse_cluster,
        slack_webhook_url=args.slack_webhook_url,
        ttl_days=args.ttl_days,
    )
    # Handlers first: a supervisor may signal as soon as the address is printed.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    running = RunningService(settings)
    gc.freeze()  # startup's objects live as long as the process: keep them out of full GC passes
    print(
        f"agentwatch serving: OTLP/HTTP {running.otlp_endpoint}  "
        f"OTLP/gRPC {running.otlp_grpc_endpoint or 'off'}  API {running.api_url}",
        flush=True,
    )
    print(f"settings: {dict(settings_summary(settings))}", flush=True)
    stop.wait()
    print("stopping: draining detection, deliveries and writes ...")
    running.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs each request's full URL at INFO; a Slack webhook URL is a secret.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "dashboards":
            return _export_dashboards(args.out)
        if args.command == "query":
            from ._query import run_query

            return run_query(args)
        if args.command == "postmortem":
            from ._postmortem import run_postmortem

            return run_postmortem(args)
        if args.command == "migrate":
            from ._cluster import run_migrate

            return run_migrate(args)
        if args.command == "backtest":
            from ._backtest import run_backtest

            return run_backtest(args)
        from ._demo import run_demo

        return run_demo(
            agents=args.agents, warmup_s=args.warmup_s, data_dir=args.data_dir, seed=args.seed
        )
    except ConfigError as exc:
        print(f"agentwatch: configuration error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"agentwatch: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
