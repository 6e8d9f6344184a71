"""The bridge's own terms: value types, the error tree and the ports adapters implement."""
