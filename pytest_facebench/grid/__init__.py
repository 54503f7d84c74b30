"""The grid file: reading and merging TOML (`gridfile`), validating it into specs (`config`), names to code
(`registry`) and building models and tasks from specs (`builders`)."""
