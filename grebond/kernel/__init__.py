"""Reading and changing the running kernel through pyroute2 (imported only here and in backends)."""
