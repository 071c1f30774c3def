"""Vector stores: files chunked, embedded and indexed per tenant, searched
by vectors and keywords together (``/v1/vector_stores``, ``file_search``)."""

from responsa.vectorstores.ranking import SearchMode
from responsa.vectorstores.search import Hit
from responsa.vectorstores.service import VectorStores

__all__ = ["Hit", "SearchMode", "VectorStores"]
