"""The `studio` command: `up` (everything), `api`, `worker`, `keys`, plus the core's `train` and `estimate`.

This is the composition root, so it may start both halves; the API app itself (backend/app.py) still
never imports the worker, and the worker never imports the backend.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import typer

from worker.finetune import cli as core_cli

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Fine-tuning Studio: fine-tune language models without writing training code.")
app.registered_commands += core_cli.app.registered_commands  # studio train / studio estimate
keys_app = typer.Typer(no_args_is_help=True, help="API keys for team mode (STUDIO_AUTH=on): create, list, revoke.")
app.add_typer(keys_app, name="keys")


def _serve_api(host: str, port: int) -> None:
    import uvicorn

    from backend.api.proxies import SERVER_OPTIONS
    from backend.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info", timeout_graceful_shutdown=5, **SERVER_OPTIONS)


def _bound_settings(host: str | None, port: int | None):
    """The settings for serving on `host`/`port`: they go through STUDIO_HOST/STUDIO_PORT, so the rules tied
    to the address apply (auth on by default off loopback; STUDIO_AUTH=off refused there)."""
    from pydantic import ValidationError

    from backend.settings import get_settings

    if host:
        os.environ["STUDIO_HOST"] = host
    if port:
        os.environ["STUDIO_PORT"] = str(port)
    get_settings.cache_clear()
    try:
        return get_settings()
    except ValidationError as exc:
        typer.echo(f"error: {exc.errors()[0]['msg'].removeprefix('Value error, ')}", err=True)
        raise typer.Exit(2) from None


def _warn_without_keys(settings) -> None:
    """With auth on and no live key, nobody can use the studio yet: say how to make the first key."""
    from backend.db.session import Database
    from backend.services.auth import list_keys

    if not settings.auth_enabled:
        return
    database = Database(settings.database_url)
    try:
        with database.session() as session:
            if not list_keys(session=session):
                typer.echo("Auth is on (STUDIO_AUTH) and there is no API key yet: create one with "
                           "`studio keys create --user <you> --admin`.", err=True)
    finally:
        database.dispose()


@app.command()
def api(host: str = typer.Option(None, help="Bind address (default STUDIO_HOST, 127.0.0.1)."),
        port: int = typer.Option(None, help="Port (default STUDIO_PORT, 8000).")) -> None:
    """Run the REST API (and the event relay) alone, against STUDIO_REDIS_URL."""
    settings = _bound_settings(host, port)
    _serve_api(settings.host, settings.port)


@app.command()
def worker(queues: str = typer.Option("gpu", help="Comma-separated queues: gpu, inference."),
           gpus: str = typer.Option(None, help="GPU indices, e.g. '0,1': one worker process per GPU.")) -> None:
    """Run a Celery worker (one process per GPU) against STUDIO_REDIS_URL."""
    from worker.celery_app import run_worker

    devices = [g.strip() for g in gpus.split(",")] if gpus else []
    if len(devices) <= 1:
        if devices:
            os.environ["CUDA_VISIBLE_DEVICES"] = devices[0]
        run_worker(queues=tuple(queues.split(",")))
        return
    children = [_spawn([sys.executable, "-m", "backend.cli", "worker", "--queues", queues, "--gpus", d])
                for d in devices]
    _wait_and_stop(children)


@app.command()
def up(host: str = typer.Option(None, help="Bind address (default 127.0.0.1)."),
       port: int = typer.Option(None, help="Port (default 8000).")) -> None:
    """The whole studio: embedded Redis (unless STUDIO_REDIS_URL), database, a training worker and an
    inference worker, API + UI."""
    from backend.db.migrate import upgrade_database
    from backend.embedded import EmbeddedRedis
    from backend.settings import get_settings

    settings = _bound_settings(host, port)
    settings.ensure_dirs()
    os.environ["STUDIO_DATA_DIR"] = str(settings.data_dir)
    embedded = None
    if settings.redis_url is None:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        os.environ["STUDIO_REDIS_URL"] = embedded.start()
        get_settings.cache_clear()
        typer.echo(f"embedded Redis on {embedded.url}")
    children: list[subprocess.Popen] = []
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into SystemExit so `finally` runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        upgrade_database(settings.database_url)
        _warn_without_keys(settings)
        children.append(_spawn([sys.executable, "-m", "backend.cli", "worker", "--queues", "gpu"]))
        # chat, estimates and merges get their own worker, so they answer while a job trains
        children.append(_spawn([sys.executable, "-m", "backend.cli", "worker", "--queues", "inference"]))
        typer.echo(f"Fine-tuning Studio on http://{settings.host}:{settings.port}  (Ctrl-C stops everything)")
        _serve_api(settings.host, settings.port)
    finally:
        _stop(children)
        if embedded is not None:
            embedded.stop()


def _keys_session():
    """A session on the configured database, migrated to head first."""
    from backend.db.migrate import upgrade_database
    from backend.db.session import Database
    from backend.settings import get_settings

    settings = get_settings()
    settings.ensure_dirs()
    upgrade_database(settings.database_url)
    return Database(settings.database_url)


def _cli_actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (some containers)
        return "cli"


@keys_app.command("create")
def keys_create(user: str = typer.Option(..., "--user", help="Who the key is for (shown in the audit log)."),
                team: str = typer.Option(None, "--team", help="The team whose files, jobs and adapters it sees."),
                admin: bool = typer.Option(False, "--admin", help="Sees and may change everything.")) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from backend.services import audit, auth

    database = _keys_session()
    try:
        with database.session() as session:
            try:
                row, key = auth.create_key(session=session, user=user, team=team, is_admin=admin)
            except auth.KeyRefused as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from None
            audit.record(session=session, actor=_cli_actor(), action="key.create", resource_type="api_key",
                         resource_id=row.id, team=row.team, detail={"user": row.user, "is_admin": row.is_admin})
            role = "admin" if row.is_admin else "member"
            typer.echo(f"Created {row.id} for {row.user} ({role}{', team ' + row.team if row.team else ''}).", err=True)
            typer.echo("Keep this key now; it is not shown again:", err=True)
            typer.echo(key)
    finally:
        database.dispose()


@keys_app.command("list")
def keys_list(all_: bool = typer.Option(False, "--all", help="Include revoked keys.")) -> None:
    """List keys (their id and first characters; never the key itself)."""
    from datetime import datetime, timezone

    from backend.services import auth

    def when(ts: int | None) -> str:
        return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M") if ts else "-"

    database = _keys_session()
    try:
        with database.session() as session:
            rows = auth.list_keys(session=session, include_revoked=all_)
            lines = [("ID", "PREFIX", "USER", "TEAM", "ROLE", "CREATED", "REVOKED")]
            lines += [(r.id, r.prefix + "…", r.user, r.team or "-", "admin" if r.is_admin else "member",
                       when(r.created_at), when(r.revoked_at)) for r in rows]
    finally:
        database.dispose()
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key's id (key-…) or its shown prefix.")) -> None:
    """Revoke a key: requests with it answer 401 from now on."""
    from backend.services import audit, auth

    database = _keys_session()
    try:
        with database.session() as session:
            try:
                row = auth.revoke_key(session=session, key_id=key_id)
            except auth.KeyRefused as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from None
            audit.record(session=session, actor=_cli_actor(), action="key.revoke", resource_type="api_key",
                         resource_id=row.id, team=row.team, detail={"user": row.user})
            typer.echo(f"Revoked {row.id} ({row.user}).")
    finally:
        database.dispose()


def _spawn(command: list[str]) -> subprocess.Popen:
    """A child in its own process group, so stopping it also stops its training subprocesses."""
    return subprocess.Popen(command, start_new_session=True)


def _stop(children: list[subprocess.Popen], grace: float = 10.0) -> None:
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.time() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _wait_and_stop(children: list[subprocess.Popen]) -> None:
    def handle(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handle)
    try:
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(children)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
