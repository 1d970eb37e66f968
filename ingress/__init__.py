"""The thin ingress: FastAPI over the submit path, result polling and queue visibility."""
