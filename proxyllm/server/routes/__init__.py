"""Thin routes: parse, call into the runtime, encode."""
