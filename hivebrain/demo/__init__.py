"""A whole hive on loopback: `hivebrain demo` and the multi-node tests."""
