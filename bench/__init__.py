"""Benchmark: proxyllm and the LiteLLM proxy on one config, one mock upstream, one load generator."""
