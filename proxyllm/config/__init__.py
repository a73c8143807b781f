"""LiteLLM-compatible configuration: the YAML file, its schema, and the environment."""

from proxyllm.config.loader import ConfigError, load_config
from proxyllm.config.schema import DeploymentConfig, ProxyConfig

__all__ = ["ConfigError", "DeploymentConfig", "ProxyConfig", "load_config"]
