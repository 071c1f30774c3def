"""``responsa chat`` in a real terminal (tmux): the banner with URL and
model, an answer, Ctrl-C stopping an answer while the chat goes on,
``/exit``, and a server that is down. tmux is installed by .ci/run."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (.ci/run installs it with apt-get)")


class Pane:
    """One tmux session on a private tmux server (``-L``), so it starts with
    this process's environment and never touches anybody else's tmux."""

    def __init__(self, command: list[str]) -> None:
        self.socket = f"responsa-test-{uuid.uuid4().hex[:8]}"
        env = {k: os.environ[k] for k in ("PYTHONPATH", "RESPONSA_LOCAL_THREADS") if k in os.environ}
        line = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(command)
        self._tmux("new-session", "-d", "-s", "chat", "-x", "160", "-y", "50", f"env {line}")
        self._tmux("set-option", "-t", "chat", "remain-on-exit", "on")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def send(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "chat", *keys)

    def text(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "chat", "-S", "-200")

    def dead(self) -> bool:
        return self._tmux("display-message", "-p", "-t", "chat", "#{pane_dead}").strip() == "1"

    def wait(self, check: Callable[[str], bool], what: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check(text := self.text()):
                return text
            time.sleep(0.05)
        raise AssertionError(f"waited {timeout}s for {what}; the pane shows:\n{self.text()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def pane_factory() -> Iterator[Callable[[list[str]], Pane]]:
    panes: list[Pane] = []

    def make(command: list[str]) -> Pane:
        panes.append(Pane(command))
        return panes[-1]

    yield make
    for pane in panes:
        pane.close()


def test_chat_in_a_terminal(server: str, pane_factory: Callable[[list[str]], Pane]) -> None:
    pane = pane_factory([sys.executable, "-m", "responsa.cli", "chat", "--base-url", server, "--model", "test/echo"])
    pane.wait(lambda t: f"responsa chat: {server}, model test/echo" in t and "/exit" in t and "Ctrl-C" in t,
              "the banner")
    pane.send("hello there", "Enter")
    pane.wait(lambda t: "\nhello there\n" in t, "the first answer")
    pane.send("[[long:2000]] [[delay:20]]", "Enter")
    pane.wait(lambda t: "word20 " in t, "a long answer to start")
    pane.send("C-c")
    text = pane.wait(lambda t: "[stopped]" in t, "Ctrl-C to stop the answer")
    assert "word1999" not in text and not pane.dead(), "the answer stopped, the chat did not"
    pane.send("still here", "Enter")
    pane.wait(lambda t: "\nstill here\n" in t, "the chat to go on after Ctrl-C")
    pane.send("/exit", "Enter")
    pane.wait(lambda t: pane.dead(), "/exit to end the chat")
    assert "Traceback" not in pane.text()


def test_chat_names_the_default_model(server: str, pane_factory: Callable[[list[str]], Pane]) -> None:
    pane = pane_factory([sys.executable, "-m", "responsa.cli", "chat", "--base-url", server])
    pane.wait(lambda t: "model (the server default)" in t, "the banner")
    pane.send("hi", "Enter")
    pane.wait(lambda t: "(model: test/echo)\nhi\n" in t, "the model's name with the first answer")
    pane.send("C-d")
    pane.wait(lambda t: pane.dead(), "Ctrl-D to end the chat")


def test_chat_with_the_server_down(pane_factory: Callable[[list[str]], Pane]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed
    pane = pane_factory([sys.executable, "-m", "responsa.cli", "chat", "--base-url", url])
    text = pane.wait(lambda t: "cannot reach a Responsa server at" in t, "the server-down message")
    assert url in text and "make serve" in text and "Traceback" not in text
    pane.wait(lambda t: pane.dead(), "chat to exit")
