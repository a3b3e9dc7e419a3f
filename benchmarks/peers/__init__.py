"""The serving peers a user would pick instead (LitServe, BentoML, MLServer), each serving the
bundled encoder with the same request and the service's own PNG decode, each in its own virtual
environment (environments.py). benchmarks/peers_compare.py runs them beside the service."""
