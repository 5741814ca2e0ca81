"""s2's trainer: pure ML, compiling a dataset revision into weights.

`trainer.spec`, `trainer.data` and `trainer.result` are torch-free (cheap to import in servers and Celery
parents); `trainer.train` loads torch and Lightning.
"""
