"""clients/tiktok."""
