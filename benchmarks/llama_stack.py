"""llama-stack, the comparison server: installed once into its own venv
(it needs Python >= 3.12; Responsa's venv may be 3.11) from
``benchmarks/requirements-llama-stack.txt``, never a dependency of Responsa,
configured with one remote OpenAI-compatible inference provider pointing at
the benchmark's fake upstream, and started next to Responsa so both are
measured in the same run.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from _harness import ROOT, free_port, wait_up
from load import Target

VERSION = "0.7.3"
CONFIG = """\
version: 2
distro_name: responsa-bench
apis: [inference, responses, files, tool_runtime, vector_io]
providers:
  inference:
  - {{provider_id: fake, provider_type: "remote::openai", config: {{base_url: "{upstream}", api_key: fake}}}}
  responses:
  - provider_id: builtin
    provider_type: "inline::builtin"
    config:
      persistence:
        agent_state: {{namespace: agents, backend: kv_default}}
        responses: {{table_name: responses, backend: sql_default, max_write_queue_size: 10000, num_writers: 4}}
  files:
  - provider_id: files
    provider_type: "inline::localfs"
    config: {{storage_dir: "{store}/files", metadata_store: {{table_name: files_metadata, backend: sql_default}}}}
  tool_runtime:
  - {{provider_id: model-context-protocol, provider_type: "remote::model-context-protocol"}}
  vector_io: []
storage:
  backends:
    kv_default: {{type: kv_sqlite, db_path: "{store}/kvstore.db"}}
    sql_default: {{type: sql_sqlite, db_path: "{store}/sql_store.db"}}
  stores:
    metadata: {{namespace: registry, backend: kv_default}}
    inference: {{table_name: inference_store, backend: sql_default, max_write_queue_size: 10000, num_writers: 4}}
    conversations: {{table_name: openai_conversations, backend: sql_default}}
    prompts: {{namespace: prompts, backend: kv_default}}
    connectors: {{namespace: connectors, backend: kv_default}}
registered_resources:
  models:
  - {{model_id: fake-model, provider_id: fake, provider_model_id: fake-model, model_type: llm}}
"""
VENV = Path(os.environ.get("RESPONSA_BENCH_LLAMA_VENV", Path.home() / ".cache/responsa-bench/llama-stack-venv"))
REQUIREMENTS = ROOT / "benchmarks/requirements-llama-stack.txt"


def python312() -> str | None:
    """A Python >= 3.12 interpreter: on PATH, or one pyenv installed."""
    for name in ("python3.13", "python3.12"):
        found = shutil.which(name)
        if found and subprocess.run([found, "--version"], capture_output=True).returncode == 0:
            return found
    candidates = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.1[23]*/bin/python3")))
    return candidates[-1] if candidates else None


def ensure_venv(log: Callable[[str], None]) -> tuple[Path | None, str | None]:
    """The venv's ``llama`` command, installing it the first time; or why not."""
    llama = VENV / "bin/llama"
    marker = VENV / f".installed-{hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]}"
    if llama.exists() and marker.exists():
        return llama, None
    py = python312()
    if py is None:
        return None, "no Python >= 3.12 found (llama-stack 0.7.3 requires it); install one or pass --no-llama-stack"
    log(f"installing llama-stack {VERSION} into {VENV} with {py} (once, a few minutes)")
    if not (VENV / "bin/python").exists():
        subprocess.run([py, "-m", "venv", str(VENV)], check=True)
    done = subprocess.run([str(VENV / "bin/pip"), "install", "-q", "--progress-bar", "off", "-r", str(REQUIREMENTS)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return None, f"pip install of llama-stack failed: {done.stderr.strip()[-500:]}"
    marker.touch()
    return llama, None


def config(tmp: Path, up_port: int) -> Path:
    """The smallest run config the Responses API starts with: the fake as a
    ``remote::openai`` inference provider (model ``fake/fake-model``, the
    name Responsa knows it by too), SQLite stores in ``tmp``, and the APIs
    its responses provider insists on (files, tool_runtime, vector_io with no
    provider: nothing here needs embeddings)."""
    path = tmp / "llama-stack.yaml"
    store = tmp / "llama-stack"
    store.mkdir(exist_ok=True)
    path.write_text(CONFIG.format(upstream=f"http://127.0.0.1:{up_port}/v1", store=store))
    return path


def start(tmp: Path, up_port: int, log: Callable[[str], None]) -> tuple[
        subprocess.Popen[bytes] | None, Target | None, str | None]:
    llama, why = ensure_venv(log)
    if llama is None:
        return None, None, why
    port = free_port()
    cfg = config(tmp, up_port)
    out = (tmp / "llama-stack.log").open("wb")
    proc = subprocess.Popen([str(llama), "stack", "run", str(cfg), "--port", str(port)], stdout=out, stderr=out,
                            env={**os.environ, "PYTHONPATH": "", "LLAMA_STACK_LOGGING": "all=warning"})
    try:
        wait_up(f"http://127.0.0.1:{port}/v1/health", proc, timeout=180)
    except RuntimeError as exc:
        proc.kill()
        tail = (tmp / "llama-stack.log").read_text(errors="replace")[-800:]
        return None, None, f"llama-stack did not start ({exc}): {tail}"
    return proc, Target("llama-stack", f"http://127.0.0.1:{port}", "fake/fake-model", proc.pid), None
