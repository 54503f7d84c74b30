"""What a run keeps between runs: the packed embedding store and its admin commands, the cell cache,
leases, and the keys and fingerprints that name what is cached."""
