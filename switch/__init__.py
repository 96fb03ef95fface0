"""A message-driven transaction switch simulator for LEADS/NCIC image transactions."""

__version__ = "0.1.0"
