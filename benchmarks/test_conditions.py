"""Average model distance per stimulus condition."""


def test_conditions(model, conditions_task, facebench):
    results = facebench.evaluate(model, conditions_task)
    assert set(results["condition"]) == set(conditions_task.conditions)
