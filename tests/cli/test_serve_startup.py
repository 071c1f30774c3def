"""``responsa serve`` says what it is doing, and refuses a configuration
that cannot work with a message (exit 2, no traceback)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}


def _serve(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "responsa.cli", "serve", "--port", str(_free_port()), *args],
                          cwd=cwd, env=_env(), capture_output=True, text=True, timeout=60)


def test_start_up_report(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "responsa.cli", "serve", "--port", str(port)], cwd=tmp_path,
                                env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(20)
    # Not a terminal: one JSON object per line; the report is in their messages.
    text = "\n".join(json.loads(line)["message"] if line.startswith("{") else line
                     for line in log.read_text().splitlines())
    url = f"http://127.0.0.1:{port}"
    assert f'serving on {url}  (openai: base_url="{url}/v1"; dedalus_labs and responsa: base_url="{url}")' in text
    assert "default model: local/smollm2  (no upstream API key is set: the embedded model)" in text
    assert "providers: test (test: *); local (local: smollm2)" in text
    assert f"database: SQLite file {tmp_path.resolve() / 'responsa.db'}" in text
    assert "redis: off" in text and "auth: off" in text


def test_missing_model_file_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text('[providers.mine]\nkind = "local"\nmodels = { qwen = "models/qwen.gguf" }\n')
    out = _serve("--config", "r.toml", cwd=tmp_path)
    assert out.returncode == 2
    assert f"[providers.mine]: model 'qwen': file not found: {tmp_path / 'models' / 'qwen.gguf'}" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_prompts_dir_and_config_file_stop_start_up(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text('prompts_dir = "prompts"\n')
    out = _serve("--config", "r.toml", cwd=tmp_path)
    assert out.returncode == 2 and f"prompts_dir {tmp_path / 'prompts'} is not a directory" in out.stderr
    out = _serve("--config", "nope.toml", cwd=tmp_path)
    assert out.returncode == 2 and "config file not found" in out.stderr and "Traceback" not in out.stderr


def test_unknown_default_model_stops_start_up(tmp_path: Path) -> None:
    out = _serve("--model", "local/qwen", cwd=tmp_path)
    assert out.returncode == 2
    assert "default model: The model 'local/qwen' does not exist: provider 'local' serves only smollm2" in out.stderr
