"""``shell`` and ``local_shell``: commands the client runs in its own shell.

Models see one function each: ``shell(commands: [str], timeout_ms?)``
(the current tool) and ``local_shell(command: [str], ...)`` (the older
``exec`` action); their calls become ``shell_call`` / ``local_shell_call``
items, and the client's ``shell_call_output`` (stdout, stderr, outcome per
command) / ``local_shell_call_output`` go back to the model as the
function's output text.
"""

from __future__ import annotations

from typing import Any

from openai.types.responses.response_input_item_param import (
    LocalShellCall,
    LocalShellCallOutput,
    ShellCall,
    ShellCallOutput,
)

from responsa.protocol.errors import invalid
from responsa.tools.base import ItemKind
from responsa.tools.client_calls import ClientCall, arguments, dumps, only_keys, sdk_normaliser, tool_type

SHELL_CALL = ItemKind("shell_call", "sh", call_id=True,
                      blank={"action": {"commands": [], "timeout_ms": None, "max_output_length": None}})
LOCAL_SHELL_CALL = ItemKind("local_shell_call", "lsh", call_id=True,
                            blank={"action": {"type": "exec", "command": [], "env": {}}})


def _parse_shell(tool: dict[str, Any], param: str) -> dict[str, Any]:
    only_keys(tool, param, frozenset({"type", "environment", "allowed_callers"}))
    env = tool.get("environment")
    if env is not None and (not isinstance(env, dict) or env.get("type") not in ("local", "container_auto",
                                                                                  "container_reference")):
        raise invalid(f"Invalid '{param}.environment': expected an object whose 'type' is 'local', "
                      "'container_auto' or 'container_reference'.", f"{param}.environment")
    if env is not None and env["type"] != "local":
        raise invalid(f"'{param}.environment' {env['type']!r} asks for an OpenAI-hosted container, which this "
                      "server does not run: use {\"type\": \"local\"} (the client runs the commands) or an "
                      "'openai-responses' upstream.", f"{param}.environment.type", "unsupported_value")
    return dict(tool)


def _shell_function(tool: dict[str, Any]) -> dict[str, Any]:
    return {"name": "shell", "description": "Run shell commands on the user's machine and get their stdout, "
            "stderr and exit codes. Commands run in order, each in a fresh shell.",
            "parameters": {"type": "object", "properties": {
                "commands": {"type": "array", "items": {"type": "string"}, "description": "Commands to run."},
                "timeout_ms": {"type": "integer", "description": "Time limit per command, in milliseconds."}},
                "required": ["commands"]}}


def _shell_decode(tool: dict[str, Any], raw: str) -> dict[str, Any]:
    args = arguments(raw)
    commands = args.get("commands", args.get("command", []))
    if isinstance(commands, str):
        commands = [commands]
    action: dict[str, Any] = {"commands": [str(c) for c in commands] if isinstance(commands, list) else []}
    if not action["commands"] and raw and not args:
        action["commands"] = [raw]  # a model that wrote the command itself instead of JSON
    if isinstance(args.get("timeout_ms"), int):
        action["timeout_ms"] = args["timeout_ms"]
    action.setdefault("timeout_ms", None)
    action["max_output_length"] = None
    return {"action": action}


def _shell_encode(item: dict[str, Any]) -> str:
    action = item.get("action") or {}
    args: dict[str, Any] = {"commands": action.get("commands") or []}
    if action.get("timeout_ms") is not None:
        args["timeout_ms"] = action["timeout_ms"]
    return dumps(args)


def _shell_output(item: dict[str, Any]) -> str:
    parts = []
    for out in item.get("output") or []:
        outcome = out.get("outcome") or {}
        status = "timed out" if outcome.get("type") == "timeout" else f"exit code {outcome.get('exit_code')}"
        parts.append(f"[{status}]\nstdout:\n{out.get('stdout', '')}\nstderr:\n{out.get('stderr', '')}")
    return "\n\n".join(parts) or "(no output)"


SHELL = ClientCall(
    tool_type="shell", kind=SHELL_CALL, output_type="shell_call_output", parse_tool=_parse_shell,
    function=_shell_function, decode=_shell_decode, encode=_shell_encode, output=_shell_output,
    input_items={"shell_call": sdk_normaliser(ShellCall, "sh"),
                 "shell_call_output": sdk_normaliser(ShellCallOutput, "sho")})


def _parse_local(tool: dict[str, Any], param: str) -> dict[str, Any]:
    only_keys(tool, param, frozenset({"type"}))
    return {"type": "local_shell"}


def _local_function(tool: dict[str, Any]) -> dict[str, Any]:
    return {"name": "local_shell", "description": "Run a command on the user's machine (argv form) and get its "
            "output.", "parameters": {"type": "object", "properties": {
                "command": {"type": "array", "items": {"type": "string"},
                            "description": "The program and its arguments, e.g. [\"ls\", \"-la\"]."},
                "working_directory": {"type": "string"}, "timeout_ms": {"type": "integer"}},
                "required": ["command"]}}


def _local_decode(tool: dict[str, Any], raw: str) -> dict[str, Any]:
    args = arguments(raw)
    command = args.get("command", args.get("commands", []))
    if isinstance(command, str):
        command = ["bash", "-lc", command]
    action: dict[str, Any] = {"type": "exec", "command": [str(c) for c in command] if isinstance(command, list)
                              else [], "env": {}}
    for key, kind in (("working_directory", str), ("timeout_ms", int), ("user", str)):
        if isinstance(args.get(key), kind):
            action[key] = args[key]
    return {"action": action}


def _local_encode(item: dict[str, Any]) -> str:
    action = item.get("action") or {}
    return dumps({k: action[k] for k in ("command", "working_directory", "timeout_ms") if action.get(k) is not None})


LOCAL_SHELL = ClientCall(
    tool_type="local_shell", kind=LOCAL_SHELL_CALL, output_type="local_shell_call_output",
    parse_tool=_parse_local, function=_local_function, decode=_local_decode, encode=_local_encode,
    output=lambda item: item.get("output") or "(no output)",
    call_id_of_output=lambda item: item.get("call_id") or item.get("id"),
    input_items={"local_shell_call": sdk_normaliser(LocalShellCall, "lsh"),
                 "local_shell_call_output": sdk_normaliser(LocalShellCallOutput, "lsho")})

SHELL_TOOL_TYPE = tool_type(SHELL)
LOCAL_SHELL_TOOL_TYPE = tool_type(LOCAL_SHELL)
