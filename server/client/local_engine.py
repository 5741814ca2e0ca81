"""The local backend's data engine: queues, suggestions, consensus, slices, lineage."""

from server.client.units import _audited, _author, _blobs
from server.db import run_read


class LocalEngine:
    """The data engine on the local store (a part of LocalBackend)."""

    # the data engine
    def accept_suggestions(self, name: str, queue: str, keys: list[str], branch: str | None) -> list[dict]:
        from server.engine.service import accept_suggestions

        blobs = _blobs()
        return _audited(
            "engine.accept",
            f"{name}/{queue}",
            lambda db: accept_suggestions(db, blobs, dataset=name, queue=queue, keys=keys, branch=branch, author=_author()),
            lambda r: {"keys": [a["key"] for a in r][:100]},
        )

    def keep_labels(self, name: str, queue: str, keys: list[str]) -> int:
        from server.engine.service import keep_labels

        return _audited(
            "engine.keep",
            f"{name}/{queue}",
            lambda db: keep_labels(db, dataset=name, queue=queue, keys=keys, by=_author()),
            lambda r: {"kept": r},
        )

    def queue_neighbours(self, name: str, queue: str, key: str, k: int) -> list[dict]:
        from server.engine.service import neighbours

        blobs = _blobs()
        return run_read(lambda db: neighbours(db, blobs, dataset=name, queue=queue, key=key, k=k))

    def example_lineage(self, name: str, key: str) -> list[dict]:
        from server.engine.lineage import example_lineage

        blobs = _blobs()
        return run_read(lambda db: example_lineage(db, blobs, dataset=name, key=key))

    def model_lineage(self, ref: str) -> dict:
        from server.engine.lineage import model_lineage

        blobs = _blobs()
        return run_read(lambda db: model_lineage(db, blobs, ref=ref))

    def set_consensus(self, name: str, queue: str, votes: int, branch: str | None) -> dict:
        from server.engine.consensus import require_votes

        return _audited(
            "consensus.set",
            f"{name}/{queue}",
            lambda db: require_votes(db, dataset=name, queue=queue, required=votes, branch=branch, by=_author()),
        )

    def vote(self, name: str, queue: str, key: str, label: str) -> dict:
        from server.engine.consensus import cast_vote

        blobs = _blobs()
        return _audited(
            "consensus.vote",
            f"{name}/{queue}",
            lambda db: cast_vote(db, blobs, dataset=name, queue=queue, key=key, label=label, labeler=_author()),
        )

    def resolve_dispute(self, name: str, key: str, label: str, branch: str | None) -> dict:
        from server.engine.consensus import resolve_dispute

        blobs = _blobs()
        return _audited(
            "consensus.resolve",
            name,
            lambda db: resolve_dispute(db, blobs, dataset=name, key=key, label=label, by=_author(), branch=branch),
        )

    def agreement(self, name: str, queue: str) -> dict:
        from server.engine.consensus import queue_agreement

        return run_read(lambda db: queue_agreement(db, dataset=name, queue=queue))

    def add_slice(self, name: str, slice_name: str, keys: list[str] | None, query: str | None, rev: str | None, minimum: float) -> dict:
        from server.engine.slices import add_slice

        blobs = _blobs()
        return _audited(
            "slice.add",
            f"{name}/{slice_name}",
            lambda db: add_slice(db, blobs, dataset=name, name=slice_name, keys=keys, query=query, rev=rev, minimum=minimum, by=_author()),
        )

    def list_slices(self, name: str) -> list[dict]:
        from server.engine.slices import list_slices

        return run_read(lambda db: list_slices(db, dataset=name))

    def remove_slice(self, name: str, slice_name: str) -> None:
        from server.engine.slices import remove_slice

        _audited("slice.remove", f"{name}/{slice_name}", lambda db: remove_slice(db, dataset=name, name=slice_name))

    def model_analysis(self, ref: str) -> dict | None:
        from server.engine.service import analysis_of
        from server.registry.service import get_model

        found = run_read(lambda db: analysis_of(db, get_model(db, ref)))
        return None if found is None else found.__dict__

    def review_remove(self, name: str, queue: str, keys: list[str] | None):
        from labeling.review import remove_items

        return _audited(
            "review.remove", f"{name}/{queue}", lambda db: remove_items(db, dataset=name, queue=queue, keys=keys), lambda r: {"removed": r}
        )
