"""Smart contracts (CheckpointRegistry) and the anchoring client."""
