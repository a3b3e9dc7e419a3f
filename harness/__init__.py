"""What tests and benchmarks share: servers, request bodies, realistic pictures."""
