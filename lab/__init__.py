"""The architecture-search and ablation lab."""
