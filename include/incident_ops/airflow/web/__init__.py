"""The FastAPI app the plugin mounts: plan pages, answer pages, the Incident ops view."""
