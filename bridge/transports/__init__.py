"""Transports: how envelopes and answers move between bridges."""
