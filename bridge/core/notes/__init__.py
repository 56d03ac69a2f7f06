"""The C2SP formats of transparency-log witnessing (PROTOCOL.md §13): signed notes,
checkpoints, Ed25519 cosignatures, and the tlog-witness ``add-checkpoint`` exchange. Pure."""
