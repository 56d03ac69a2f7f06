"""The engine: what a bridge does with documents, envelopes and acknowledgements, behind
ports (the store, the courier, the clock); no HTTP here."""
