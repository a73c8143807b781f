"""Provider adapters. Importing this package registers every adapter with the registry."""

from proxyllm.providers import ollama, openai
from proxyllm.providers.base import Provider, provider_class, provider_names, register

__all__ = ["Provider", "ollama", "openai", "provider_class", "provider_names", "register"]
