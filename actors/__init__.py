"""Per-node actors that consume events and publish new ones (see DESIGN.md section 5)."""
