"""Framework-agnostic core: imports neither Django nor Flask."""
