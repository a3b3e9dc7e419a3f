"""The Open Inference Protocol (v2 REST): its messages on the wire, and the VAEs' halves as its models."""
