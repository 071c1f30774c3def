"""``responsa serve`` and ``responsa chat``.

Both talk to a person first: ``serve`` refuses a configuration that cannot
work with a message saying what to fix (not a traceback from deep inside the
first request) and then says what it is serving, from where, with what;
``chat`` says where it is connected, how to leave, and survives Ctrl-C and a
server that goes away.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from responsa import __version__, redact

if TYPE_CHECKING:
    from responsa.config import Settings
    from responsa.providers.registry import Registry

log = logging.getLogger("responsa")


def _fail(problems: list[str]) -> int:
    print("responsa: cannot start:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return 2


def _database(url: str) -> str:
    """Where the data lives, in words, without any password."""
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:").removeprefix("///").split("?")[0]
        return "SQLite in memory" if path in ("", ":memory:") else f"SQLite file {Path(path).resolve()}"
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"PostgreSQL {user}{host}{port}{parts.path}"


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _providers(settings: Settings, registry: Registry) -> str:
    listed = []
    for name, cfg in settings.providers.items():
        models = [m.removeprefix(f"{name}/") for m in registry.available() if m.startswith(f"{name}/")]
        where = f" at {cfg.base_url}" if cfg.base_url else ""
        listed.append(f"{name} ({cfg.kind}{where}: {', '.join(models) or '*'})")
    return "; ".join(listed)


def _startup_report(settings: Settings, registry: Registry, config: str | None) -> None:
    host = settings.host if settings.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = f"http://{host}:{settings.port}"
    log.info("responsa %s serving on %s  (openai: base_url=\"%s/v1\"; dedalus_labs and responsa: "
             "base_url=\"%s\")", __version__, url, url, url)
    if settings.host in ("0.0.0.0", "::"):
        log.info("listening on all interfaces (%s)", settings.host)
    log.info("default model: %s  (%s)", settings.default_model, settings.default_model_source)
    log.info("providers: %s", _providers(settings, registry))
    if settings.aliases:
        log.info("aliases: %s", ", ".join(f"{a} -> {t}" for a, t in settings.aliases.items()))
    log.info("database: %s", _database(settings.database_url))
    log.info("redis: %s", _redacted(settings.redis_url) if settings.redis_url else
             "off (one process: live streams and cancels stay in this process)")
    log.info("auth: %s", f"on ({len(settings.api_keys)} API keys; each key is its own tenant)"
             if settings.api_keys else "off (open mode: any key is accepted; key-less callers share one tenant)")
    log.info("config file: %s", Path(config).resolve() if config else "none (env and defaults)")
    if settings.prompts_dir:
        log.info("prompts: seeded from %s", Path(settings.prompts_dir).resolve())


def _serve(args: argparse.Namespace) -> int:

    from responsa import serving, workers
    from responsa.api.app import create_app
    from responsa.config import load_settings
    from responsa.observability import logs
    from responsa.providers.registry import Registry

    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "database_url": args.database_url,
                                   "log_level": args.log_level, "default_model": args.model,
                                   "allow_open_mode": args.allow_open_mode or None,
                                   "shutdown_timeout_s": args.shutdown_timeout, "workers": args.workers}.items()
                 if v is not None}
    config = args.config or os.environ.get("RESPONSA_CONFIG")
    if config and not Path(config).is_file():
        return _fail([f"config file not found: {Path(config).resolve()}"])
    try:
        settings = load_settings(config, **overrides)
    except tomllib.TOMLDecodeError as exc:
        return _fail([f"{config} is not valid TOML: {exc}"])
    except (ValueError, TypeError) as exc:
        return _fail([str(exc)])
    redact.install()
    fmt = args.log_format or os.environ.get("RESPONSA_LOG_FORMAT", "auto")
    if fmt not in ("auto", "json", "text"):
        raise SystemExit(f"--log-format must be auto, json or text, not {fmt!r}")
    logs.configure(settings.log_level, "json" if fmt == "json" else "text" if fmt == "text" else "auto",
                   access=args.access_log)
    try:
        serving.check_open_mode(settings)
        workers.check(settings.workers, settings.redis_url)
    except (serving.OpenModeRefused, workers.WorkersRefused) as exc:
        print(exc.code, file=sys.stderr)
        return 2
    registry = Registry(settings)
    problems = registry.check()
    if settings.prompts_dir and not Path(settings.prompts_dir).is_dir():
        problems.append(f"prompts_dir {Path(settings.prompts_dir).resolve()} is not a directory")
    if problems:
        return _fail(problems)
    _startup_report(settings, registry, config)
    asyncio.run(registry.aclose())  # the app builds its own; this one only checked and reported
    # access_log=False: ours replaces uvicorn's (one line per request).
    serving.run(create_app(settings, tune_gc=True), settings, access_log=False)
    return 0


_EXIT = ("/exit", "/quit")


def _chat(args: argparse.Namespace) -> int:
    """A terminal conversation over the Responses API: each line is a turn
    chained with ``previous_response_id``, the answer streamed as it comes.
    Ctrl-C stops the answer being written (the conversation goes on from the
    last complete answer); ``/exit`` or Ctrl-D ends the session."""
    import httpx

    from responsa.client import APIStatusError, Responsa, Response
    from responsa.client._client import _base_url

    url = _base_url(args.base_url)
    client = Responsa(base_url=url, api_key=args.api_key, max_retries=0)
    interactive = sys.stdin.isatty()
    down = (f"cannot reach a Responsa server at {url}: start one with `make serve` (or `.venv/bin/responsa "
            "serve`), or point --base-url / RESPONSA_BASE_URL at yours")
    try:
        client._http.get("/health", timeout=5)
    except httpx.TransportError:
        print(f"responsa chat: {down}", file=sys.stderr)
        return 1
    if interactive:
        print(f"responsa chat: {url}, model {args.model or '(the server default)'}\n"
              "Type a message and press Enter. /exit or Ctrl-D quits; Ctrl-C stops an answer.")
    previous: str | None = None
    named = args.model is not None
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            return 0
        except KeyboardInterrupt:
            print("\n(/exit or Ctrl-D quits)")
            continue
        if not line.strip():
            continue
        if line.strip() in _EXIT:
            return 0
        events = None
        try:
            events = client.responses.create(model=args.model, input=line, previous_response_id=previous,
                                             instructions=args.instructions, stream=True)
            assert not isinstance(events, Response)
            for event in events:
                if event.type == "response.created" and interactive and not named and event.response is not None:
                    named = True  # the banner could not know the server's default: say it once
                    print(f"(model: {event.response.model})")
                if event.type == "response.output_text.delta":
                    print(getattr(event, "delta", ""), end="", flush=True)
                elif event.response is not None and event.type in ("response.completed", "response.incomplete",
                                                                   "response.failed"):
                    previous = event.response.id
                    if event.response.error:
                        print(f"[{event.response.error.get('message')}]", end="")
            print()
        except KeyboardInterrupt:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # drops the connection: the server stops generating
            print("\n[stopped]")
        except APIStatusError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
        except httpx.TransportError:
            print(f"error: {down}", file=sys.stderr)


def _keys(args: argparse.Namespace) -> int:
    """Manage API keys in the database the server uses; running servers pick
    changes up within seconds (``keys.gate.REFRESH_S``), no restart."""
    import asyncio
    import json

    from responsa.config import load_settings
    from responsa.keys.db import OpsDB
    from responsa.store import open_store

    overrides = {"database_url": args.database_url} if args.database_url else {}
    settings = load_settings(args.config, **overrides)

    async def run() -> int:
        store = open_store(settings.database_url)
        await store.open()  # applies migrations, so the keys tables exist
        await store.close()
        db = OpsDB(settings.database_url)
        await db.open()
        try:
            return await _keys_command(args, db, json)
        finally:
            await db.close()

    return asyncio.run(run())


async def _keys_command(args: argparse.Namespace, db: Any, json: Any) -> int:
    if args.keys_command == "create":
        secret, key = await db.create_key(args.name, requests_per_minute=args.rpm, tokens_per_minute=args.tpm,
                                          max_concurrent=args.concurrency, token_budget=args.budget)
        if args.json:
            print(json.dumps({"key": secret, **key.public()}))
        else:
            print(secret)
            print(f"created {key.id} ({key.name}); the key is shown only this once", file=sys.stderr)
        return 0
    if args.keys_command == "list":
        keys = [k.public() for k in await db.list_keys()]
        if args.json:
            print(json.dumps(keys))
            return 0
        print(f"{'id':<21}{'name':<20}{'prefix':<14}{'status':<9}{'rpm':>7}{'tpm':>9}{'conc':>6}{'budget':>12}")
        for k in keys:
            status = "revoked" if k["revoked_at"] else "active"
            print(f"{k['id']:<21}{k['name'][:19]:<20}{k['prefix']:<14}{status:<9}"
                  f"{k['requests_per_minute'] or '-':>7}{k['tokens_per_minute'] or '-':>9}"
                  f"{k['max_concurrent'] or '-':>6}{k['token_budget'] or '-':>12}")
        return 0
    if args.keys_command == "revoke":
        if not await db.revoke_key(args.key_id):
            print(f"no active key {args.key_id[:16]}", file=sys.stderr)
            return 1
        print(f"revoked {args.key_id[:16]}", file=sys.stderr)
        return 0
    names = {k.id: k.name for k in await db.list_keys()}
    rows = [r for r in await db.usage(start=args.start_date, end=args.end_date)
            if args.key_id is None or r.key_id == args.key_id]
    out = [{"date": r.day, "key_id": r.key_id, "key_name": names.get(r.key_id or ""), "model": r.model,
            "requests": r.requests, "input_tokens": r.input_tokens, "output_tokens": r.output_tokens} for r in rows]
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{'date':<12}{'key':<21}{'model':<32}{'requests':>9}{'input':>11}{'output':>11}")
    for r in out:
        print(f"{r['date']:<12}{(r['key_id'] or '-'):<21}{r['model'][:31]:<32}{r['requests']:>9}"
              f"{r['input_tokens']:>11}{r['output_tokens']:>11}")
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
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                       help="one structured line per request (default on)")
    serve.add_argument("--log-format", choices=["auto", "json", "text"],
                       help="json lines, or text; auto (default): text on a terminal, else json")
    serve.add_argument("--allow-open-mode", action="store_true",
                       help="serve a non-loopback address without API keys (all key-less callers share one tenant)")
    serve.add_argument("--workers", type=int,
                       help="server processes sharing the port (SO_REUSEPORT; more than 1 needs redis_url)")
    serve.add_argument("--shutdown-timeout", type=float,
                       help="seconds requests in flight get after SIGTERM before they are cancelled (default 10)")
    chat = sub.add_parser("chat", help="talk to a server from the terminal (one line, one turn)")
    chat.add_argument("--base-url", help="server URL (default $RESPONSA_BASE_URL or http://127.0.0.1:8080)")
    chat.add_argument("--api-key", help="API key (default $RESPONSA_API_KEY)")
    chat.add_argument("--model", help="model, e.g. local/smollm2 (default: the server's default)")
    chat.add_argument("--instructions", help="system prompt for every turn")
    keys = sub.add_parser("keys", help="manage API keys and read usage (in the server's database)")
    keys.add_argument("--database-url", help="the server's database (default from config/env)")
    keys.add_argument("--config", help="TOML config file")
    keys.add_argument("--json", action="store_true", help="print JSON")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    create = ksub.add_parser("create", help="create a key (printed once)")
    create.add_argument("name", help="who the key is for, e.g. a team")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    create.add_argument("--concurrency", type=int, help="requests (streams, WebSockets) at once")
    create.add_argument("--budget", type=int, help="total tokens the key may use")
    ksub.add_parser("list", help="list keys (never the secrets)")
    revoke = ksub.add_parser("revoke", help="revoke a key (its id, or the key itself)")
    revoke.add_argument("key_id", help="key_... id, or the rsk-... key")
    usage = ksub.add_parser("usage", help="requests and tokens by key, model and day")
    usage.add_argument("--start-date", help="YYYY-MM-DD (inclusive)")
    usage.add_argument("--end-date", help="YYYY-MM-DD (inclusive)")
    usage.add_argument("--key-id", help="one key only")
    args = parser.parse_args(argv)
    if args.command == "keys":
        return _keys(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "chat":
        return _chat(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
