"""``proxyllm`` command: LiteLLM's main flags, then uvicorn with uvloop and httptools."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from proxyllm import __version__


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="proxyllm", description="A fast, LiteLLM-compatible LLM gateway.")
    parser.add_argument(
        "command",
        nargs="?",
        choices=["serve", "migrate", "import-litellm"],
        default="serve",
        help="serve (default); migrate: bring the database schema up to date and exit; "
        "import-litellm: copy keys, users, teams, budgets and models from a LiteLLM database (--from)",
    )
    parser.add_argument("--from", dest="source", help="import-litellm: the LiteLLM database URL (postgresql://...)")
    parser.add_argument("--dry-run", action="store_true", help="import-litellm: read and summarise, write nothing")
    parser.add_argument(
        "--litellm-salt-key",
        default=os.environ.get("LITELLM_SOURCE_SALT_KEY"),
        help="import-litellm: the salt key (or master key) LiteLLM sealed its stored models with "
        "(default $LITELLM_SOURCE_SALT_KEY)",
    )
    parser.add_argument("--config", "-c", help="LiteLLM-style config.yaml (default: serve the local Ollama)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT") or 4000),
        help="port to listen on (default: $PORT or 4000)",
    )
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"), help="address to bind (default 0.0.0.0)")
    parser.add_argument("--num_workers", "--num-workers", type=int, default=1, help="worker processes")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "info"))
    parser.add_argument("--version", "-v", action="version", version=f"proxyllm {__version__}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from proxyllm.config import ConfigError, load_config
    from proxyllm.core.errors import StartupError

    if args.command == "migrate":
        raise SystemExit(migrate(args.config))
    if args.command == "import-litellm":
        raise SystemExit(import_litellm(args.config, args.source, dry_run=args.dry_run, salt_key=args.litellm_salt_key))
    if args.config:
        os.environ["PROXYLLM_CONFIG"] = os.path.abspath(args.config)
        try:  # fail once, clearly, before any worker starts
            from proxyllm.server.runtime import Runtime

            Runtime(load_config(args.config))
        except (ConfigError, StartupError) as exc:
            print(f"proxyllm: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    import uvicorn

    uvicorn.run(
        "proxyllm.server.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.num_workers if args.num_workers > 1 else None,
        loop="uvloop",
        http="httptools",
        log_level=args.log_level.lower(),
        access_log=False,
        proxy_headers=False,  # the client address behind proxies is general_settings.trusted_proxies' job
        timeout_graceful_shutdown=30,
    )


def migrate(config_path: str | None) -> int:
    import asyncio

    from proxyllm.config import ConfigError, load_config
    from proxyllm.db import Database, resolve_database_url

    try:
        configured = load_config(config_path).general_settings.database_url if config_path else None
    except ConfigError as exc:
        print(f"proxyllm: {exc}", file=sys.stderr)
        return 2
    db = Database(resolve_database_url(configured))

    async def run() -> None:
        try:
            await db.migrate()
        finally:
            await db.close()

    try:
        asyncio.run(run())
    except Exception as exc:
        print(f"proxyllm: migration of {db.describe()} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"proxyllm: database {db.describe()} is up to date")
    return 0


def import_litellm(config_path: str | None, source: str | None, *, dry_run: bool, salt_key: str | None) -> int:
    import asyncio

    from proxyllm.config import ConfigError, load_config
    from proxyllm.config.schema import ProxyConfig
    from proxyllm.core.errors import StartupError
    from proxyllm.db.url import redact
    from proxyllm.ops.litellm_import import Importer, ImportError_, LiteLLMSource
    from proxyllm.server.runtime import Runtime

    if not source:
        print("proxyllm import-litellm: --from postgresql://... (the LiteLLM database) is required", file=sys.stderr)
        return 2

    async def run() -> int:
        try:
            config = load_config(config_path) if config_path else ProxyConfig()
            runtime = Runtime(config)
        except (ConfigError, StartupError) as exc:
            print(f"proxyllm: {exc}", file=sys.stderr)
            return 2
        await runtime.db.migrate()
        try:
            store = runtime.ops.models
            if store is not None:
                await store.refresh(force=True)
            importer = Importer(runtime.db, salt_key=salt_key, model_store=store)
            try:
                summary = await importer.run(LiteLLMSource(source), dry_run=dry_run)
            except ImportError_ as exc:
                print(f"proxyllm import-litellm: {exc}", file=sys.stderr)
                return 1
            print(f"into {runtime.db.describe()} from {redact(source)}")
            for line in summary.lines(dry_run=dry_run):
                print(line)
            return 0
        finally:
            await runtime.db.close()
            await runtime.http.close()

    return asyncio.run(run())


if __name__ == "__main__":
    main()
