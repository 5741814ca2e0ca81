"""The data engine's records: each model's out-of-sample view of its data, and what labelers kept.

The ranking math is pure and lives beside the trainer (trainer.engine); the cross-fitting runs in
the workers after training (workers.execute); the queues it fills are review queues (labeling.review).
"""
