"""The pytest session and the command-line runners: the per-process session (grid, fixtures' models and
tasks, records, outputs at the end), the `facebench` fixture, sharding and cluster launch, `reproduce`
and the `embeddings` export."""
