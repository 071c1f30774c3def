"""``responsa serve`` and friends."""

from __future__ import annotations

import argparse
import logging
import sys

from responsa import __version__, redact


def _serve(args: argparse.Namespace) -> int:
    from responsa import serving
    from responsa.api.app import create_app
    from responsa.config import load_settings

    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "database_url": args.database_url,
                                   "log_level": args.log_level, "default_model": args.model,
                                   "allow_open_mode": args.allow_open_mode or None,
                                   "shutdown_timeout_s": args.shutdown_timeout}.items()
                 if v is not None}
    settings = load_settings(args.config, **overrides)
    redact.install()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serving.check_open_mode(settings)
    except serving.OpenModeRefused as exc:
        print(exc.code, file=sys.stderr)
        return 2
    serving.run(create_app(settings), settings, access_log=args.access_log)
    return 0


def _chat(args: argparse.Namespace) -> int:
    """A terminal conversation over the Responses API: each line is a turn
    chained with ``previous_response_id``, the answer streamed as it comes."""
    from responsa.client import APIStatusError, Responsa, Response

    client = Responsa(base_url=args.base_url, api_key=args.api_key)
    previous: str | None = None
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            return 0
        if not line.strip():
            continue
        try:
            events = client.responses.create(model=args.model, input=line, previous_response_id=previous,
                                             instructions=args.instructions, stream=True)
            assert not isinstance(events, Response)
            for event in events:
                if event.type == "response.output_text.delta":
                    print(getattr(event, "delta", ""), end="", flush=True)
                elif event.response is not None and event.type in ("response.completed", "response.incomplete",
                                                                   "response.failed"):
                    previous = event.response.id
                    if event.response.error:
                        print(f"[{event.response.error.get('message')}]", end="")
            print()
        except APIStatusError as exc:
            print(f"error: {exc.message}", file=sys.stderr)


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
    serve.add_argument("--allow-open-mode", action="store_true",
                       help="serve a non-loopback address without API keys (all key-less callers share one tenant)")
    serve.add_argument("--shutdown-timeout", type=float,
                       help="seconds requests in flight get after SIGTERM before they are cancelled (default 10)")
    chat = sub.add_parser("chat", help="talk to a server from the terminal (one line, one turn)")
    chat.add_argument("--base-url", help="server URL (default $RESPONSA_BASE_URL or http://127.0.0.1:8080)")
    chat.add_argument("--api-key", help="API key (default $RESPONSA_API_KEY)")
    chat.add_argument("--model", help="model, e.g. local/smollm2 (default: the server's default)")
    chat.add_argument("--instructions", help="system prompt for every turn")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "chat":
        return _chat(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
