"""Table-driven HTTP conformance cases and their runner (see FORMAT.md)."""
