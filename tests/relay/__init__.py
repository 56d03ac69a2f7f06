"""The mediator's relay: a real nats-server, its configuration and its permissions."""
