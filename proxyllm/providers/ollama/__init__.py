"""Ollama: ``ollama_chat/<model>`` -> /api/chat, ``ollama/<model>`` -> /api/generate, embeddings -> /api/embed."""

from proxyllm.providers.ollama.provider import OllamaChatProvider, OllamaProvider

__all__ = ["OllamaChatProvider", "OllamaProvider"]
