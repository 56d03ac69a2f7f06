"""Direct HTTP between bridges: the peer endpoint and its limits."""
