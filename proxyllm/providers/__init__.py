"""Provider adapters. Importing this package registers every adapter with the registry."""

from proxyllm.providers import anthropic, azure, compat, gemini, ollama, openai, rerank
from proxyllm.providers.base import Provider, provider_class, provider_names, register

__all__ = [
    "Provider",
    "anthropic",
    "azure",
    "compat",
    "gemini",
    "ollama",
    "openai",
    "provider_class",
    "provider_names",
    "register",
    "rerank",
]
