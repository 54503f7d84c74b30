"""Representational similarity: model RDMs against a human RDM over a stimulus set."""


def test_rsa(model, rsa_task, facebench):
    results = facebench.evaluate(model, rsa_task)
    assert results.loc[results["metric"] == "rsa", "value"].between(-1, 1).all()
