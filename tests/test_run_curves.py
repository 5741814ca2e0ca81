"""A run's curve history (server.runs.curves): every epoch kept, step losses thinned to a bound, in step order."""

from server.runs.curves import MAX_POINTS, CurveHistory


def test_the_history_keeps_every_epoch_and_a_bounded_evenly_thinned_loss_curve():
    history = CurveHistory()
    steps_per_epoch, epochs = 100, 5
    for epoch in range(1, epochs + 1):
        for step in range((epoch - 1) * steps_per_epoch + 1, epoch * steps_per_epoch + 1):
            history.add({"epoch": epoch, "epochs": epochs, "step": step, "loss": 1 / step})
        end = epoch * steps_per_epoch
        history.add({"epoch": epoch, "epochs": epochs, "step": end, "loss": 0.5, "eval_loss": 0.4, "eval_accuracy": None})
    history.add({"epoch": epochs, "epochs": epochs, "step": end, "loss": 0.3, "eval_loss": 0.2, "eval_accuracy": 0.9})  # again

    record = history.record({"epoch": epochs, "epochs": epochs, "step": end, "loss": 0.3})
    assert record["epochs"] == epochs and record["loss"] == 0.3  # the latest report is kept as it was
    assert [e["epoch"] for e in record["epoch_ends"]] == [1, 2, 3, 4, 5]
    assert record["epoch_ends"][-1] == {"epoch": 5, "step": 500, "loss": 0.3, "eval_loss": 0.2, "eval_accuracy": 0.9}
    steps = [s for s, _ in record["points"]]
    assert MAX_POINTS // 2 <= len(steps) <= MAX_POINTS and steps[0] == 1 and steps == sorted(steps)
    gaps = {b - a for a, b in zip(steps, steps[1:])}
    assert len(gaps) == 1  # evenly thinned: one stride across the whole run
    assert all(loss == round(1 / step, 6) for step, loss in record["points"])
