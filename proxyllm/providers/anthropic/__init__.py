"""Anthropic: ``anthropic/<model>`` on the Messages API, plus the translations behind ``/v1/messages``."""

from proxyllm.providers.anthropic.provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
