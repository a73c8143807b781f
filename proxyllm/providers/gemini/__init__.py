"""Gemini (Google AI Studio): chat on generateContent / streamGenerateContent, embeddings on embedContent."""

from proxyllm.providers.gemini.provider import GeminiProvider

__all__ = ["GeminiProvider"]
