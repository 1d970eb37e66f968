"""tenantq: a multi-tenant worker fleet for LLM jobs.

This package is the shell around the layers: settings, the error tree, logging, the producer client, the
embedded services and the CLI. Import `tenantq.client.Client` to submit jobs from Python.
"""

__version__ = "0.1.0"
