"""Responsa: a self-hostable OpenAI Responses API server for any model."""

__version__ = "0.1.0"
