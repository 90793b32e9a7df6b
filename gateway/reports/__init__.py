"""Reports computed from the gateway's records (response times, coverage)."""
