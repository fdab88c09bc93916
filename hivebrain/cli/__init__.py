"""The `hivebrain` command: one module per command or command group."""
