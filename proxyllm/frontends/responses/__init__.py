"""The OpenAI Responses API: request and chat translation, output, streaming events, stored responses."""
