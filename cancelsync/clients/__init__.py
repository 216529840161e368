"""HTTP clients: the worker's only doors to Magento and TikTok Shop (no decisions here)."""
