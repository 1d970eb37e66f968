"""The shared language of tenantq: pydantic v2 models for jobs, results, usage, tenants and agent configs.

This package imports nothing else of ours, so every layer can depend on it.
"""
