"""clients/magento."""
