"""Pure decision rules: observed facts and a store's settings in, a Decision out; no I/O."""
