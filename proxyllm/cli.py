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
        choices=["serve", "migrate"],
        default="serve",
        help="serve (default) or migrate: bring the database schema up to date and exit",
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
    from proxyllm.server.deployments import StartupError

    if args.command == "migrate":
        raise SystemExit(migrate(args.config))
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


if __name__ == "__main__":
    main()
