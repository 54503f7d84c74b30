"""Writing what a run produced: CSV tables, run.json, the terminal summary (plots and HTML to come)."""
