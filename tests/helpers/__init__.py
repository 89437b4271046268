"""Shared test helpers (builders for small local fixtures; nothing here touches the network)."""
