"""The hardware manager: robots discovered, health-checked and leased."""
