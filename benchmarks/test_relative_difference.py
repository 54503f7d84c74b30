"""Relative differences between two declared groups (face inversion, Thatcher illusion)."""


def test_relative_difference(model, relative_difference_task, facebench):
    results = facebench.evaluate(model, relative_difference_task)
    assert results.loc[results["metric"] == "relative_difference", "value"].between(-1, 1).all()
