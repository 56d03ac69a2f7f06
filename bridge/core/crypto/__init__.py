"""Keys and identities: the one place where algorithms are named."""
