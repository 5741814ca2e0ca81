"""Merge requests: pull requests for data, whose check is a trained model."""
