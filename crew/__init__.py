"""infra-crew: a crew of agents that designs, builds, validates and deploys infrastructure."""

__version__ = "0.1.0"
