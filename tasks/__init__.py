"""What a job does: the pipeline every job runs through, and one module per job kind."""
