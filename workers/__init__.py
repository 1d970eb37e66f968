"""Runs it all: the Celery app, the job task with its lease hooks, and the admission dispatcher."""
