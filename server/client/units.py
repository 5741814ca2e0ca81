"""What every local-store operation shares: who is acting, the blob store, a write with its audit event."""

from server.db import run_in_transaction


def _author() -> str:
    from server.cli.common import author

    return author()


def _audited(action: str, target, work, detail=None):
    """Run a write in one transaction with its audit event (actor: S2_AUTHOR), as the API records its writes."""
    from server.auth.service import record

    def unit(db):
        result = work(db)
        record(db, _author(), action, target(result) if callable(target) else target, detail(result) if detail else None)
        return result

    return run_in_transaction(unit)


def _blobs():
    from server.blobs import default_blob_store

    return default_blob_store()
