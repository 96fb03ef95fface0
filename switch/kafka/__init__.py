"""Kafka plumbing shared by every stage: client factories, topics, the local broker."""
