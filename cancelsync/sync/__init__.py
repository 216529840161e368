"""The sync engine: where the rules' decisions meet the clients and the store."""
