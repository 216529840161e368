"""Simulated Magento 2 and TikTok Shop APIs on loopback, for tests, benchmarks and the demo."""
