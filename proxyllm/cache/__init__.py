"""The response cache: chat completions (plain and streamed), text completions and embeddings."""
