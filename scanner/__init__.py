"""yima-scan: the scanning client (talks only to the public HTTP API)."""
