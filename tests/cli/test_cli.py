"""The command line: ``responsa --version`` and ``responsa chat`` against a
real server (``serve`` itself is exercised by the multi-process tests)."""

from __future__ import annotations

import subprocess
import sys

from responsa import __version__


def test_version() -> None:
    out = subprocess.run([sys.executable, "-m", "responsa.cli", "--version"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == f"responsa {__version__}"


def test_chat_streams_answers_and_chains_turns(server: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "responsa.cli", "chat", "--base-url", server, "--api-key", "cli-key",
         "--model", "test/echo", "--instructions", "be brief"],
        input="hello there\n\n[[history]]\n[[error]]\n", capture_output=True, text=True, timeout=60, check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == "hello there"
    assert lines[1] == "user: hello there | assistant: hello there | user:"  # the second turn saw the first
    assert lines[2] == "[Scripted upstream failure (502).]"  # a failed turn says why; the session goes on
