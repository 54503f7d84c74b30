"""Closed-set identification: probes against a gallery (rank-k rates, the CMC curve)."""


def test_identification(model, identification_task, facebench):
    results = facebench.evaluate(model, identification_task)
    ranks = results[results["metric"].str.fullmatch(r"rank\d+")]
    ranks = ranks.assign(k=ranks["metric"].str[4:].astype(int)).sort_values("k")
    assert ranks["value"].between(0, 1).all()
    for _, layer in ranks.groupby("layer"):
        assert layer["value"].is_monotonic_increasing  # a CMC curve never falls
