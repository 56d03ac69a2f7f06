"""The witness (PROTOCOL.md §13.3): a small service, usually run by the mediator, that
cosigns each party's audit-log checkpoints with its own clock and refuses any that is not an
extension of what it cosigned before. Its home, state and HTTP service."""
