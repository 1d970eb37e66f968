"""The ground floor every layer stands on: the one settings object, the one error tree, logging with
redaction, and the process's asyncio loop. It imports nothing of tenantq's own packages, so every layer
(ingress, tenancy, workers, tasks, providers, mcp_clients) may import it and imports only point down.
"""
