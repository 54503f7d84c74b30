"""Relations across models (property against benefit): the grid's `tags` and `[[relations]]` (`spec`), the
`-k`-like model selection (`select`), the computation from a run's results with relations.csv and the gate
(`compute`), and the figures (`figures`). The statistics are `stats.relations`."""
