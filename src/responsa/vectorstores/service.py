"""``VectorStores``: what the ``/v1/vector_stores`` routes and the
``file_search`` tool call. It validates what they are given (400s naming
the parameter), keeps every object per tenant, runs ingestion through the
``Ingestor`` (background, leased, restart-safe) and answers searches
(``search.py``).

Costs are bounded per request: ``MAX_BATCH_FILES`` files per batch,
``MAX_FILES_PER_STORE`` files per store, ``MAX_SEARCH_STORES`` stores and
``MAX_QUERIES`` query strings of ``MAX_QUERY_CHARS`` per search,
``max_num_results`` 1..50.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Literal

from responsa.protocol.errors import APIError, invalid, not_found
from responsa.protocol.ids import new_id
from responsa.store.base import Store
from responsa.store.vectors import NewFile, VectorStoreDB
from responsa.vectorstores import objects, search
from responsa.vectorstores.base import Embedder, EmbedderFor, Files
from responsa.vectorstores.chunking import chunk, parse_strategy
from responsa.vectorstores.embedding import embed_chunks
from responsa.vectorstores.filters import check_attributes
from responsa.vectorstores.ingest import Ingestor, Job
from responsa.vectorstores.ranking import DEFAULT_FUSION, Fusion, SearchMode

MAX_BATCH_FILES = 500
MAX_FILES_PER_STORE = 10_000


def _missing(vector_store_id: str) -> APIError:
    return not_found(f"No vector store found with id '{vector_store_id}'.", "vector_store_id",
                     "vector_store_not_found")


def _missing_file(vector_store_id: str, file_id: str) -> APIError:
    return not_found(f"No file '{file_id}' in vector store '{vector_store_id}'.", "file_id", "file_not_found")


class VectorStores:
    def __init__(self, store: Store, *, embedder_for: EmbedderFor, files: Files | None, embedding_model: str,
                 lease_s: float = 30.0, concurrency: int = 2, fusion: Fusion = DEFAULT_FUSION) -> None:
        self.db = VectorStoreDB(store.driver)  # type: ignore[attr-defined]  # SQLStore's (every store is one)
        self.embedder_for = embedder_for
        self.embedder_override: Embedder | None = None
        """Used for every store when set (benchmarks: an embedder with an on-disk cache)."""
        self.files = files
        self.embedding_model = embedding_model
        self.fusion = fusion
        """Hybrid search's default fusion (settings ``vector_store_rrf_k`` and the weights)."""
        self.ingestor = Ingestor(self.db, self._ingest, lease_s=lease_s, concurrency=concurrency)
        self.supervisor = self.ingestor.supervisor

    async def start(self) -> None:
        await self.ingestor.start()

    async def stop(self) -> None:
        await self.ingestor.stop()

    def embedder(self, model: str) -> Embedder:
        return self.embedder_override or self.embedder_for(model)

    # -- vector stores ------------------------------------------------------------

    async def create(self, tenant: str, params: dict[str, Any]) -> dict[str, Any]:
        """``params``: OpenAI's create body (keys already checked by the route)."""
        body = {"name": objects.check_name(params.get("name")),
                "description": objects.check_description(params.get("description")),
                "metadata": objects.check_metadata_param(params.get("metadata")),
                "expires_after": objects.check_expires_after(params.get("expires_after"))}
        file_ids = self._file_ids(params.get("file_ids"), "file_ids", required=False)
        strategy = parse_strategy(params.get("chunking_strategy"))
        embedder = self.embedder(self.embedding_model)
        dims = embedder.dimensions or len((await embedder.embed(["dimensions"]))[0])
        now = int(time.time())
        vid = new_id("vs")
        news = await self._new_files(tenant, file_ids, {}, strategy) if file_ids else []
        await self.db.create_store(tenant, vid, now, body, embedder.model, dims, objects.expires_at(body, now))
        if news:
            await self._attach(tenant, vid, news, None)
        return await self.retrieve(tenant, vid)

    async def retrieve(self, tenant: str, vector_store_id: str) -> dict[str, Any]:
        row = await self.db.get_store(tenant, vector_store_id)
        if row is None:
            raise _missing(vector_store_id)
        return objects.vector_store(row, int(time.time()))

    async def update(self, tenant: str, vector_store_id: str, params: dict[str, Any]) -> dict[str, Any]:
        row = await self.db.get_store(tenant, vector_store_id)
        if row is None:
            raise _missing(vector_store_id)
        body = dict(row.body)
        if "name" in params:
            body["name"] = objects.check_name(params["name"])
        if "metadata" in params:
            body["metadata"] = objects.check_metadata_param(params["metadata"])
        if "expires_after" in params:
            body["expires_after"] = objects.check_expires_after(params["expires_after"])
        now = int(time.time())
        if not await self.db.update_store(tenant, vector_store_id, body, now, objects.expires_at(body, now)):
            raise _missing(vector_store_id)
        return await self.retrieve(tenant, vector_store_id)

    async def delete(self, tenant: str, vector_store_id: str) -> dict[str, Any]:
        if not await self.db.delete_store(tenant, vector_store_id):
            raise _missing(vector_store_id)
        return {"id": vector_store_id, "object": "vector_store.deleted", "deleted": True}

    async def list_stores(self, tenant: str, *, after: str | None, before: str | None, limit: int,
                   order: Literal["asc", "desc"]) -> tuple[list[dict[str, Any]], bool]:
        rows, more = await self.db.list_stores(tenant, after=after, before=before, limit=limit, order=order)
        now = int(time.time())
        return [objects.vector_store(r, now) for r in rows], more

    # -- files ----------------------------------------------------------------------

    def _file_ids(self, raw: Any, param: str, *, required: bool) -> list[str]:
        if raw is None and not required:
            return []
        if not isinstance(raw, list) or not all(isinstance(f, str) and f for f in raw):
            raise invalid(f"Invalid type for '{param}': expected an array of file ids.", param, "invalid_type")
        if required and not raw:
            raise invalid(f"'{param}' must not be empty.", param, "empty_array")
        if len(raw) > MAX_BATCH_FILES:
            raise invalid(f"Invalid '{param}': at most {MAX_BATCH_FILES} files at a time, got {len(raw)}.", param,
                          "array_above_max_length")
        return list(dict.fromkeys(raw))

    async def _new_files(self, tenant: str, file_ids: Sequence[str], attributes: dict[str, Any],
                         strategy: dict[str, Any], param: str = "file_ids") -> list[NewFile]:
        """The files, checked to exist for the tenant (404 naming the first missing one)."""
        files = self.files
        found = await asyncio.gather(*(files.get(tenant, fid) for fid in file_ids)) if files else [None] * len(file_ids)
        news = []
        for i, (fid, obj) in enumerate(zip(file_ids, found, strict=True)):
            if obj is None:
                raise not_found(f"No file found with id '{fid}'.", f"{param}[{i}]" if param else "file_id",
                                "file_not_found")
            news.append(NewFile(fid, str(obj.get("filename") or ""), attributes, strategy))
        return news

    async def _attach(self, tenant: str, vector_store_id: str, news: list[NewFile],
                      batch_id: str | None) -> list[dict[str, Any]]:
        row = await self.db.get_store(tenant, vector_store_id)
        if row is None:
            raise _missing(vector_store_id)
        if sum(row.counts.values()) + len(news) > MAX_FILES_PER_STORE:
            raise invalid(f"A vector store holds at most {MAX_FILES_PER_STORE} files.", "file_ids",
                          "too_many_files")
        added = await self.db.add_files(tenant, vector_store_id, news, int(time.time()), batch_id,
                                        self.ingestor.lease(), batch_created=batch_id is not None)
        if added is None:
            raise _missing(vector_store_id)
        rows, new = added
        self.ingestor.submit([(tenant, vector_store_id, fid) for fid in sorted(new)])
        return [objects.vector_store_file(f) for f in rows]

    async def add_file(self, tenant: str, vector_store_id: str, file_id: Any, *, attributes: Any = None,
                       chunking_strategy: Any = None) -> dict[str, Any]:
        if not isinstance(file_id, str) or not file_id:
            raise invalid("Missing required parameter: 'file_id'.", "file_id", "missing_required_parameter")
        news = await self._new_files(tenant, [file_id], check_attributes(attributes),
                                     parse_strategy(chunking_strategy), param="")
        return (await self._attach(tenant, vector_store_id, news, None))[0]

    async def get_file(self, tenant: str, vector_store_id: str, file_id: str) -> dict[str, Any]:
        row = await self.db.get_file(tenant, vector_store_id, file_id)
        if row is None:
            raise _missing_file(vector_store_id, file_id)
        return objects.vector_store_file(row)

    async def wait_file(self, tenant: str, vector_store_id: str, file_id: str) -> dict[str, Any]:
        """The file once this replica no longer ingests it (benchmarks, tests)."""
        await self.ingestor.wait((tenant, vector_store_id, file_id))
        return await self.get_file(tenant, vector_store_id, file_id)

    async def list_files(self, tenant: str, vector_store_id: str, *, after: str | None, before: str | None,
                         limit: int, order: Literal["asc", "desc"], status: str | None,
                         batch_id: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        if await self.db.get_store(tenant, vector_store_id) is None:
            raise _missing(vector_store_id)
        if status is not None and status not in objects.STATUSES:
            raise invalid(f"Invalid value for 'filter': {status!r}. Supported values are: "
                          + ", ".join(repr(s) for s in objects.STATUSES) + ".", "filter")
        rows, more = await self.db.list_files(tenant, vector_store_id, after=after, before=before, limit=limit,
                                              order=order, status=status, batch_id=batch_id)
        return [objects.vector_store_file(r) for r in rows], more

    async def update_file(self, tenant: str, vector_store_id: str, file_id: str, attributes: Any) -> dict[str, Any]:
        row = await self.db.update_attributes(tenant, vector_store_id, file_id, check_attributes(attributes))
        if row is None:
            raise _missing_file(vector_store_id, file_id)
        return objects.vector_store_file(row)

    async def delete_file(self, tenant: str, vector_store_id: str, file_id: str) -> dict[str, Any]:
        if not await self.db.delete_file(tenant, vector_store_id, file_id):
            raise _missing_file(vector_store_id, file_id)
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    async def file_content(self, tenant: str, vector_store_id: str, file_id: str) -> list[dict[str, Any]]:
        """The file's chunks as ``[{"type": "text", "text"}]`` (empty until completed)."""
        await self.get_file(tenant, vector_store_id, file_id)
        return [{"type": "text", "text": t} for t in await self.db.file_texts(tenant, vector_store_id, file_id)]

    # -- batches -------------------------------------------------------------------

    async def create_batch(self, tenant: str, vector_store_id: str, params: dict[str, Any]) -> dict[str, Any]:
        if ("file_ids" in params) == ("files" in params):
            raise invalid("Give exactly one of 'file_ids' and 'files'.", "file_ids", "invalid_value")
        news: list[NewFile] = []
        if "file_ids" in params:
            ids = self._file_ids(params["file_ids"], "file_ids", required=True)
            news = await self._new_files(tenant, ids, check_attributes(params.get("attributes")),
                                         parse_strategy(params.get("chunking_strategy")))
        else:
            entries = params["files"]
            if not isinstance(entries, list) or not entries:
                raise invalid("Invalid 'files': expected a non-empty array.", "files", "invalid_type")
            if len(entries) > MAX_BATCH_FILES:
                raise invalid(f"Invalid 'files': at most {MAX_BATCH_FILES} files at a time, got {len(entries)}.",
                              "files", "array_above_max_length")
            seen: set[str] = set()
            for i, entry in enumerate(entries):
                p = f"files[{i}]"
                if not isinstance(entry, dict) or not isinstance(entry.get("file_id"), str):
                    raise invalid(f"Missing required parameter: '{p}.file_id'.", f"{p}.file_id",
                                  "missing_required_parameter")
                extra = sorted(set(entry) - {"file_id", "attributes", "chunking_strategy"})
                if extra:
                    raise invalid(f"Unknown parameter: '{p}.{extra[0]}'.", f"{p}.{extra[0]}", "unknown_parameter")
                if entry["file_id"] in seen:
                    continue
                seen.add(entry["file_id"])
                news += await self._new_files(tenant, [entry["file_id"]],
                                              check_attributes(entry.get("attributes"), f"{p}.attributes"),
                                              parse_strategy(entry.get("chunking_strategy"),
                                                             f"{p}.chunking_strategy"), param=f"{p}.file_id")
        batch_id = new_id("vsfb")
        await self._attach(tenant, vector_store_id, news, batch_id)
        return await self.get_batch(tenant, vector_store_id, batch_id)

    async def get_batch(self, tenant: str, vector_store_id: str, batch_id: str) -> dict[str, Any]:
        found = await self.db.get_batch(tenant, vector_store_id, batch_id)
        if found is None:
            raise not_found(f"No file batch '{batch_id}' in vector store '{vector_store_id}'.", "batch_id",
                            "batch_not_found")
        return objects.batch(batch_id, vector_store_id, *found)

    async def cancel_batch(self, tenant: str, vector_store_id: str, batch_id: str) -> dict[str, Any]:
        await self.get_batch(tenant, vector_store_id, batch_id)
        await self.db.cancel_batch(tenant, vector_store_id, batch_id)
        return await self.get_batch(tenant, vector_store_id, batch_id)

    # -- ingestion (run by the Ingestor, holding the job's lease) -----------------------

    async def _ingest(self, job: Job, owner: str) -> None:
        tenant, vid, fid = job
        store_row = await self.db.get_store(tenant, vid)
        row = await self.db.get_file(tenant, vid, fid)
        if store_row is None or row is None or row.status != "in_progress":
            return  # deleted or cancelled meanwhile
        if self.files is None:
            raise not_found(f"No file found with id '{fid}'.", "file_id", "file_not_found")
        text = await self.files.text(tenant, fid)
        texts = await asyncio.to_thread(chunk, text, row.chunking)
        await self.insert_chunks(tenant, vid, fid, texts, None, owner=owner, model=store_row.embedding_model,
                                 dims=store_row.dimensions)

    async def insert_chunks(self, tenant: str, vector_store_id: str, file_id: str, texts: list[str],
                            vectors: list[list[float]] | None, *, owner: str | None = None, model: str | None = None,
                            dims: int | None = None) -> bool:
        """Embed ``texts`` (unless ``vectors`` are given), then store them as
        the file's chunks and mark it completed, while ``owner`` (default:
        this replica) holds its job. The ingestion job's own last step; the
        speed benchmark calls it with synthetic chunks."""
        if model is None or dims is None:
            row = await self.db.get_store(tenant, vector_store_id)
            if row is None:
                raise _missing(vector_store_id)
            model, dims = row.embedding_model, row.dimensions
        if owner is None:  # called directly: the file's row (a job held here, never started) if it is new
            await self.db.add_files(tenant, vector_store_id, [NewFile(file_id, file_id, {}, parse_strategy(None))],
                                    int(time.time()), None, self.ingestor.lease())
        if vectors is None:
            vectors = await embed_chunks(self.embedder(model), texts)
        if any(len(v) != dims for v in vectors):
            raise APIError(f"The embedding model returned vectors of another length than this vector store's {dims}.",
                           status=500, code="server_error")
        usage = sum(len(t.encode()) for t in texts) + 4 * dims * len(texts)
        return await self.db.finish_file(tenant, vector_store_id, file_id, owner or self.ingestor.owner, dims,
                                         texts, vectors, usage)

    # -- search ---------------------------------------------------------------------------

    async def search(self, tenant: str, vector_store_ids: Sequence[str], query: str | Sequence[str], *,
                     max_num_results: int = 10, filters: Any = None, ranking_options: Any = None,
                     mode: SearchMode = "hybrid", rrf_k: int | None = None) -> list[search.Hit]:
        """Ranked chunks of the tenant's stores (see ``search.run``); ``rrf_k``
        overrides the server's (benchmarks tune it)."""
        return await search.run(self, tenant, vector_store_ids, query, max_num_results=max_num_results,
                                filters=filters, ranking_options=ranking_options, mode=mode,
                                rrf_k=self.fusion.rrf_k if rrf_k is None else rrf_k)
