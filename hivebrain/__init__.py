"""hivebrain: one offline-first memory shared by the AI programs of a homelab."""

__version__ = "0.1.0"
