"""Correlation of model distances with human dissimilarity ratings."""


def test_correlation(model, correlation_task, facebench):
    results = facebench.evaluate(model, correlation_task)
    assert results.loc[results["metric"] == "correlation", "value"].between(-1, 1).all()
