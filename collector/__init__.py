"""agentwatch subpackage (being written)."""
