"""The Label Studio bridge: a dataset branch linked to a Label Studio project, tasks pushed, annotations pulled."""
