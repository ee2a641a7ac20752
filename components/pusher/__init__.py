"""pusher."""
