"""Verification tasks: same/different identity pairs."""


def test_accuracy(model, accuracy_task, facebench):
    results = facebench.evaluate(model, accuracy_task)
    assert set(results["layer"]) == set(model.layers)
    assert results.loc[results["metric"] == "auc", "value"].between(0, 1).all()
