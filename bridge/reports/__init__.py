"""Reconciliation reports: status rules, the model, the build and the renderers."""
