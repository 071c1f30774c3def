"""``responsa serve`` and friends."""

from __future__ import annotations

import argparse
import logging
import sys

from responsa import __version__


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from responsa.api.app import create_app
    from responsa.config import load_settings

    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "database_url": args.database_url,
                                   "log_level": args.log_level, "default_model": args.model}.items()
                 if v is not None}
    settings = load_settings(args.config, **overrides)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=settings.log_level.lower(), access_log=args.access_log)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="responsa", description="A Responses API server for any model.")
    parser.add_argument("--version", action="version", version=f"responsa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--database-url", help="sqlite:///file.db (default) or postgresql://...")
    serve.add_argument("--config", help="TOML config file (providers, aliases, MCP registry)")
    serve.add_argument("--model", help="default model, e.g. local/smollm2 or openai/gpt-4o-mini")
    serve.add_argument("--log-level", help="debug, info, warning, error")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
