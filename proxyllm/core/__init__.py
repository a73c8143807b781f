"""The provider-agnostic core: request context, hooks, router and the gateway call."""
