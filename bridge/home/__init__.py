"""The home folder: typed configuration, key files, pinned peers, TLS material. Below the
engine, the transports and the local API, which all read it."""
