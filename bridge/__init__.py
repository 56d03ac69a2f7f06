"""Bridge: secure bilateral exchange of rosters and manifests with per-item receipts."""

__version__ = "0.1.0"
