"""The edge as a value, shared by the write side (correlate, store) and the read side (graph):
its key and bucket, L7 and L4 stats, exemplars and their ranking, the latency sketch and its codec, the
field declaration everything per-field derives from, and the one merge. Imports neither side."""
