"""The serving limits that more than the service states: the Triton repository the trainer writes
batches as the service does."""

MAX_BATCH = 64  # images per request and per model call; VAE_MAX_BATCH changes it for a service
