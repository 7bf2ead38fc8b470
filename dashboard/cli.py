"""The command line (README, "Command line"). Errors a user can cause print one line and exit non-zero."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from dashboard.settings import Settings, SettingsError
from data_feeds.exit_codes import EXIT_UNAVAILABLE, EXIT_USAGE_ERROR

if TYPE_CHECKING:  # the commands import what they use when they run
    import dash
    from sqlalchemy.engine import Engine

    from dashboard.helper_processes import Children
    from data_feeds.importers.common import ImportSummary
    from data_feeds.ingest import IngestOptions

log = logging.getLogger("gridops")



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python app.py",
        description="GridOps command-centre dashboard. Without a command: the complete demo "
        "(embedded database and Redis, simulated district, dashboard on http://127.0.0.1:8050).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser("demo", help="the complete demo (the default)", description="Create and fill the demo district if missing, then serve the dashboard.")
    commands.add_parser("serve", help="serve the dashboard only", description="Serve the dashboard on HOST:PORT (default 127.0.0.1:8050).")
    ingest = commands.add_parser(
        "ingest", help="consume the Redis streams into the grid database",
        description="Consume gridops:case-events and gridops:patrol-gps through a consumer group into the grid database "
        "and the live state, watch deadlines, dead-letter what cannot be applied. Run several for more throughput.",
    )
    ingest.add_argument("--consumer", help="this consumer's name in the group (default: host-pid); reuse it after a restart")
    ingest.add_argument("--group", default="gridops-ingest", help="consumer group (default gridops-ingest)")
    ingest.add_argument("--batch", type=int, default=5000, help="messages per read and per transaction (default 5000)")
    ingest.add_argument("--claim-idle-ms", type=int, default=60_000, help="claim messages another consumer left pending this long (default 60000)")
    ingest.add_argument("--park-timeout", type=float, default=600.0, help="seconds an out-of-order event waits for its case (default 600)")
    ingest.add_argument("--max-deliveries", type=int, default=10, help="a message read this often without being finished is dead-lettered as poison (default 10)")
    user = commands.add_parser(
        "create-user", help="add a user",
        description="Add a user. Roles: admin, operator (the whole district), leader (a grid subtree: --scope), "
        "dept (the cases of one department: --dept), wall (a kiosk: no password, sign in with create-token).",
    )
    user.add_argument("name")
    user.add_argument("--role", required=True, choices=("admin", "operator", "leader", "dept", "wall"))
    user.add_argument("--scope", help="grid code of the area a leader is responsible for")
    user.add_argument("--dept", help="department code of a department user")
    user.add_argument("--password", help="the password (prompted for when not given; not for wall users)")
    token = commands.add_parser(
        "create-token", help="print a new API token for a user",
        description="Print a new API token for user NAME, to send as 'Authorization: Bearer TOKEN'. For a wall user it is "
        "the kiosk token: open /kiosk on the wall's browser and enter it (or open /kiosk?token=TOKEN, which puts it in the "
        "browser's history). Revoke it on the admin page.",
    )
    token.add_argument("name")

    from data_feeds import replay
    from data_feeds.simulator import command_line as simulator_command

    simulate = commands.add_parser(
        "simulate", help="publish simulated district traffic to the streams",
        description="Publish realistic traffic of the district to the Redis streams through the feed contract "
        "(patrol GPS in WGS-84, cases from every channel and their whole lifecycle). Never writes the database.",
    )
    simulator_command.add_arguments(simulate)
    replay_parser = commands.add_parser(
        "replay", help="publish recorded case events or GPS points to the streams",
        description="Publish a recorded file to the Redis streams: GeoLife GPS trajectories (lat,lng,datetime,uid; "
        ".txt or .txt.gz) shifted into the district, or LA 311 service requests (service_requests.csv with its "
        "lookup tables beside it) mapped onto the catalogue and departments.",
    )
    replay.add_arguments(replay_parser)
    commands.add_parser("init-db", help="create the database tables (idempotent)", description="Create every missing table and index of the grid database at DATABASE_URL, or bring an earlier one to the current schema.")
    commands.add_parser("migrate", help="bring the database to the current schema", description="Apply every schema revision (data_feeds/migrations) that the database at DATABASE_URL lacks; its data stays; builds missing case rollups.")
    rebuild = commands.add_parser(
        "rebuild-rollups", help="count the case rollups again from the cases",
        description="Rebuild the daily and monthly case counts the indicators read (case_rollups) from the cases, in one transaction "
        "(the feed consumer waits for it). With --from, only the months from that date's month on.",
    )
    rebuild.add_argument("--from", dest="since", type=_iso_date, metavar="DATE", help="first day to rebuild (YYYY-MM-DD; its whole month is rebuilt)")

    grids = commands.add_parser(
        "import-grids", help="import grids from GeoJSON",
        description="Import a GeoJSON FeatureCollection of grids (code, name, parent, level; DataV files as they are). "
        "The file is refused whole with the feature and field at fault, or applied in one transaction.",
    )
    grids.add_argument("file", type=Path)
    grids.add_argument("--subdivide", action="store_true", help="generate towns, communities and basic grids inside each district polygon")
    grids.add_argument("--towns", type=Path, help="CSV (code, parent, name) naming the generated towns, e.g. towns.csv")
    grids.add_argument("--communities", type=int, default=200, help="communities to generate per district (default 200)")
    grids.add_argument("--grids", type=int, default=900, help="basic grids to generate per district (default 900)")
    grids.add_argument("--seed", type=int, default=20261127, help="random seed of the generated layout")

    for name, what, columns in (
        ("import-catalog", "the event catalogue", "code, name, parent, dept, grade, register_limit, dispatch_limit, handle_limit, verify_limit, calendar"),
        ("import-departments", "departments", "code, name"),
        ("import-workers", "grid staff", "id, name, grid, role"),
    ):
        sub = commands.add_parser(name, help=f"import {what} from CSV", description=f"Import {what} from a UTF-8 CSV with columns {columns}.")
        sub.add_argument("file", type=Path)
    return parser


def main(argv: list[str], create_app: Callable[[Settings], dash.Dash]) -> int:
    """Run the command of ``argv``; ``create_app(settings)`` builds the whole web app (the
    composition root, app.py, passes it: the screens sit above this package)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic narrates every start-up (plugins, "nothing to do"); `migrate` says what changed.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    from data_feeds.db import DatabaseUnavailable
    from data_feeds.importers.common import ImportFileError

    # SIGTERM (systemd, docker stop, a test's terminate) exits like Ctrl-C, so that atexit
    # handlers stop the demo's helper processes and embedded Redis server.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        settings = Settings.from_env()
        commands = {**COMMANDS, "demo": partial(cmd_demo, create_app=create_app), "serve": partial(cmd_serve, create_app=create_app)}
        return commands[args.command or "demo"](settings, args)
    except (SettingsError, ImportFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE_ERROR
    except DatabaseUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 0


def _exit_on_sigterm(signum: int, frame: FrameType | None):
    raise SystemExit(128 + signum)


def _engine(settings: Settings) -> Engine:
    from data_feeds.db import check_reachable, make_engine

    engine = make_engine(settings.database_url)
    check_reachable(engine)
    return engine


def cmd_init_db(settings: Settings, args: argparse.Namespace) -> int:
    from data_feeds.db import describe, init_db

    engine = _engine(settings)
    init_db(engine)
    print(f"database ready: {describe(engine)}")
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from data_feeds import migrations, rollups
    from data_feeds.db import describe, init_db

    engine = _engine(settings)
    with engine.connect() as connection:
        before = migrations.current(connection)
    init_db(engine)
    with engine.connect() as connection:
        after = migrations.current(connection)
    print(f"database at schema revision {after} (was {before or 'unversioned'}): {describe(engine)}")
    if rollups.ensure(engine, settings.tz):
        print("case rollups built from the cases")
    return 0


def _iso_date(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a date (YYYY-MM-DD)") from None
    if not date(2000, 1, 1) <= day <= date(2100, 1, 1):
        raise argparse.ArgumentTypeError(f"{text!r} lies outside 2000-01-01 … 2100-01-01")
    return day


def cmd_rebuild_rollups(settings: Settings, args: argparse.Namespace) -> int:
    from data_feeds import rollups
    from data_feeds.db import init_db

    engine = _engine(settings)
    init_db(engine)
    result = rollups.rebuild(engine, settings.tz, args.since)
    since = f" from {result['since']}" if result["since"] else ""
    print(f"case rollups rebuilt{since}: {result['cases']:,} cases counted, {result['rows']:,} rows written in {result['seconds']:.1f} s")
    return 0


def _import(settings: Settings, run: Callable[[Engine], ImportSummary]) -> int:
    from data_feeds.db import init_db

    engine = _engine(settings)
    init_db(engine)
    print(run(engine))
    return 0


def cmd_import_grids(settings: Settings, args: argparse.Namespace) -> int:
    from data_feeds.importers.grids import SubdivideOptions, import_grids

    options = SubdivideOptions(args.towns, args.communities, args.grids, args.seed) if args.subdivide else None
    return _import(settings, lambda engine: import_grids(engine, args.file, options))


def cmd_import_catalog(settings: Settings, args: argparse.Namespace) -> int:
    from data_feeds.importers.catalogue import import_catalogue

    return _import(settings, lambda engine: import_catalogue(engine, args.file))


def cmd_import_departments(settings: Settings, args: argparse.Namespace) -> int:
    from data_feeds.importers.departments import import_departments

    return _import(settings, lambda engine: import_departments(engine, args.file))


def cmd_import_workers(settings: Settings, args: argparse.Namespace) -> int:
    from data_feeds.importers.workers import import_workers

    return _import(settings, lambda engine: import_workers(engine, args.file))


def _with_redis(settings: Settings):
    """Settings with a Redis URL, starting the embedded server when none is configured."""
    if settings.has_redis:
        return settings, None
    from data_feeds.embedded_redis import start_embedded_redis

    server, url = start_embedded_redis(settings.var_dir)
    log.info("started embedded Redis at %s", url)
    os.environ["REDIS_URL"] = url  # child processes (feed consumer, simulator) use the same server
    return settings.with_redis(url), server


def cmd_serve(settings: Settings, args: argparse.Namespace, create_app: Callable[[Settings], dash.Dash], children: Callable[[Settings], Children] | None = None) -> int:
    settings, _server = _with_redis(settings)
    _engine(settings)
    app = create_app(settings)
    if children is not None:
        children(settings).start()
    log.info("GridOps on http://%s:%d", settings.host, settings.port)
    app.run(host=settings.host, port=settings.port, debug=False, threaded=True)
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace, create_app: Callable[[Settings], dash.Dash]) -> int:
    from data_feeds.demo import ensure_demo
    from gridrules.clock import utc_now
    from gridrules.config import load_domain_config

    engine = _engine(settings)
    config = load_domain_config(settings.config_path, settings.tz)
    if ensure_demo(engine, config, utc_now(), settings.var_dir):
        log.info("demo district created")
    else:
        log.info("demo district found in the database; reusing it")
    if settings.auth:
        from data_feeds.demo_users import describe, ensure_demo_users

        print(describe(ensure_demo_users(engine, settings.var_dir), f"http://{settings.host}:{settings.port}"), flush=True)
    from dashboard.helper_processes import demo_children

    return cmd_serve(settings, args, create_app, children=lambda ready: demo_children(ready, ready.redis_url))


def ingest_options(settings: Settings, args: argparse.Namespace) -> IngestOptions:
    from data_feeds.ingest import IngestOptions

    values = {
        "group": args.group, "batch": args.batch, "claim_idle_ms": args.claim_idle_ms, "park_timeout_s": args.park_timeout,
        "max_deliveries": args.max_deliveries,
        "claim_every_s": max(1.0, min(15.0, args.claim_idle_ms / 2000)),
        "map_crs": settings.map_crs, "max_age_days": settings.max_event_age_days,
        "patrol_retention_days": settings.patrol_retention_days,
    }
    if args.consumer:
        values["consumer"] = args.consumer
    return IngestOptions(**values)


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from data_feeds.ingest import run_consumer
    from gridrules.config import load_domain_config

    settings, _server = _with_redis(settings)
    _engine(settings)
    run_consumer(settings, load_domain_config(settings.config_path, settings.tz), ingest_options(settings, args))
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from data_feeds.simulator import command_line as simulator_command

    settings, _server = _with_redis(settings)
    return simulator_command.command(settings, args)


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from data_feeds import replay

    if getattr(args, "dry_run", False):
        return replay.command(settings, args)  # nothing is published: no Redis needed
    settings, _server = _with_redis(settings)
    return replay.command(settings, args)


def cmd_create_user(settings: Settings, args: argparse.Namespace) -> int:
    from getpass import getpass

    from data_feeds.accounts import AccountError, create_user
    from data_feeds.credentials import PasswordError
    from data_feeds.db import init_db

    engine = _engine(settings)
    init_db(engine)
    password = args.password
    if args.role != "wall" and not password:
        password = getpass(f"password for {args.name}: ")
        if password != getpass("again: "):
            print("error: the two passwords differ", file=sys.stderr)
            return EXIT_USAGE_ERROR
    try:
        user = create_user(engine, args.name, args.role, password if args.role != "wall" else None, args.scope, args.dept, actor="cli")
    except (AccountError, PasswordError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE_ERROR
    print(f"user {user.name} created: role {user.role}" + (f", scope {user.scope}" if user.scope else "") + (f", department {user.dept}" if user.dept else ""))
    return 0


def cmd_create_token(settings: Settings, args: argparse.Namespace) -> int:
    from data_feeds.accounts import AccountError, create_token, get_user
    from data_feeds.db import init_db

    engine = _engine(settings)
    init_db(engine)
    try:
        token = create_token(engine, args.name, actor="cli")
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE_ERROR
    print(token)
    if get_user(engine, args.name).role == "wall":
        print(f"kiosk: http://{settings.host}:{settings.port}/kiosk?token={token}&kiosk=1", file=sys.stderr)
    return 0


COMMANDS = {
    "demo": cmd_demo,
    "serve": cmd_serve,
    "ingest": cmd_ingest,
    "simulate": cmd_simulate,
    "replay": cmd_replay,
    "init-db": cmd_init_db,
    "migrate": cmd_migrate,
    "rebuild-rollups": cmd_rebuild_rollups,
    "import-grids": cmd_import_grids,
    "import-catalog": cmd_import_catalog,
    "import-departments": cmd_import_departments,
    "import-workers": cmd_import_workers,
    "create-user": cmd_create_user,
    "create-token": cmd_create_token,
}
