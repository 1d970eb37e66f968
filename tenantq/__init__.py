"""tenantq: a multi-tenant worker fleet for LLM jobs.

This package is the application on top of the layers: the producer client, the CLI, `tenantq up`, the
embedded services and the benchmarks. It may import every layer and no layer imports it; what every layer
shares (settings, the error tree, logging) is the ground floor, `core/`. Import `tenantq.client.Client` to
submit jobs from Python.
"""

__version__ = "0.1.0"
