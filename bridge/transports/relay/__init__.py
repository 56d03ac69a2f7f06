"""The relay: Bridge over the mediator's NATS JetStream broker (PROTOCOL.md, "Relay binding").

``binding`` names subjects, streams, consumers, headers and permissions for both sides; the
mediator's side writes the server's configuration and credentials and runs the server
(``nkeys``, ``mediator``, ``server``, ``admin``); the party's side connects out to it
(``link``: the one connection; ``consumer``: what the broker holds for the party, acked only
once it is safe to forget; ``courier``: the party's envelopes out, the answers matched back)."""
