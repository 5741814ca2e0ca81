"""Store maintenance (admin): verify every blob (fsck), reclaim what nothing references (gc)."""

from fastapi import APIRouter, Query

from server.api.deps import CurrentUser, blob_store, read, write
from server.api.routing import OffLoopRoute
from server.api.schemas import FsckRead
from server.auth.policy import require_admin
from server.config import get_settings
from server.maintenance.gc import MIN_GRACE_S, GcReport

MAX_GRACE_S = 10 * 365 * 86400  # ten years: older than anything a store holds

router = APIRouter(tags=["maintenance"], route_class=OffLoopRoute)


@router.post("/fsck", summary="Verify every blob against its hash (admin); `ok` is false when any is corrupt or missing")
def fsck(who: CurrentUser) -> FsckRead:
    from server.maintenance.fsck import check_store

    require_admin(who, "check the store")
    store = blob_store()
    report = read(lambda db: check_store(db, store))
    return FsckRead(**report.model_dump(), ok=not report.corrupt and not report.missing)


@router.post("/gc", summary="Delete blobs nothing references and what killed imports left behind (admin)")
def gc(
    who: CurrentUser,
    dry_run: bool = Query(False, description="Only count what would be freed"),
    grace_s: float | None = Query(
        None, ge=MIN_GRACE_S, le=MAX_GRACE_S, description="Leave alone what is younger (seconds; default S2_GC_GRACE_S)"
    ),
) -> GcReport:
    from server.maintenance.gc import collect_garbage

    require_admin(who, "collect garbage")
    store = blob_store()
    grace = get_settings().gc_grace_s if grace_s is None else grace_s
    report = collect_garbage(store, grace_s=grace, dry_run=dry_run)  # its own short units of work: a sweep holds no lock
    write(
        who,
        "store.gc",
        "blobs",
        lambda db: None,
        detail=lambda _: {"blobs": report.blobs, "freed_bytes": report.freed_bytes, "dry_run": report.dry_run},
    )
    return report
