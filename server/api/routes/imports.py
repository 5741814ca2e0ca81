"""Imports by upload (multipart) and exports by download."""

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, File, Query, Response, UploadFile, status
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from server.api import problems
from server.api.deps import CurrentUser, blob_store, read, write
from server.api.pagination import Cursor, Limit, Page, cursor_int, page_from
from server.api.routing import OffLoopRoute
from server.auth.policy import require_engineer, require_reader
from server.config import get_settings
from server.datasets import uploads
from server.datasets.datasets import get_dataset
from server.db import run_in_transaction
from server.errors import S2Error
from server.imports.schemas import ImportJobRead

router = APIRouter(tags=["imports"], route_class=OffLoopRoute)


def _upload_folder() -> Path:
    """A new folder for one upload, under S2_HOME/uploads (fsck lists, and gc removes, what a crash leaves there)."""
    root = get_settings().home.resolve() / "uploads"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="upload-", dir=root))


@router.post(
    "/datasets/{name}/imports",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Upload files and import them as one commit, as a job (upsert by key; all or nothing)",
    description="Send one table (.csv/.jsonl/.parquet) with the images it names, image files, or an archive "
    "(.zip/.tar/.tar.gz) of a table or of LABEL/FILE folders. The answer is the import job (202, Location: "
    "/api/v1/imports/{id}); follow it until it succeeds (its commit) or fails (its error names the bad file and "
    "line). Nothing is committed unless every example is valid. Problems with the upload itself (file names, "
    "archives, sizes) are refused at once.",
    responses={**problems.responses(413), **problems.CONFLICT},
)
def upload(
    name: str,
    who: CurrentUser,
    response: Response,
    files: list[UploadFile] = File(description="The files to import"),
    branch: str | None = Query(None, description="Default: the default branch"),
    message: str | None = Query(None, description="Commit message (default: 'upload FILES')"),
) -> ImportJobRead:
    from server.imports.runner import remove_folder, run_import, run_in_background
    from server.imports.service import create_job

    require_engineer(who, "import data")
    limit = get_settings().upload_max_bytes
    store = blob_store()
    labels = read(lambda db: list(get_dataset(db, name).labels))
    work = _upload_folder()
    upload = None

    def describe(message: str) -> str:  # name the upload's files, never our folders
        for folder, shown in ((work / "files", "the upload"), (work / "archives", "the upload"), (work, "the upload")):
            message = message.replace(f"{folder}/", "").replace(str(folder), shown)
        return message.replace(str(get_settings().home.resolve()), "the server")

    try:
        upload = uploads.save_upload([(f.filename, f.file) for f in files], work, limit)
        source = uploads.choose_source(upload, labels)
        names = ", ".join(f.filename or "?" for f in files)
        job = write(
            who,
            "dataset.import",
            f"{name}/{branch or 'default'}",
            lambda db: create_job(
                db,
                dataset=name,
                branch=branch,
                source=names,
                message=message or f"upload {names}"[:500],
                author=who.name,
                work_dir=str(work),
            ),
            detail=lambda j: {"job": j.id, "source": names[:200]},
        )
    except BaseException as exc:
        if upload is not None:
            upload.close()
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, S2Error):
            raise type(exc)(describe(str(exc)), extra=exc.extra) from None
        raise
    root = upload.root

    def cleanup() -> None:
        upload.close()
        remove_folder(work)()

    run_in_background(
        job.id, lambda: run_import(job.id, source, store, confine=root, members=upload.members, describe_error=describe), cleanup
    )
    response.headers["Location"] = f"/api/v1/imports/{job.id}"
    return job


@router.get("/imports/{job_id}", summary="One import job: its progress, then its commit or its error")
def get_import(job_id: int, who: CurrentUser) -> ImportJobRead:
    from server.imports.service import get_job, job_dataset, job_read

    require_reader(who, read(lambda db: job_dataset(db, job_id)))
    return run_in_transaction(lambda db: job_read(db, get_job(db, job_id)))  # a job whose process died is failed here, durably


@router.get("/datasets/{name}/imports", summary="A dataset's import jobs, newest first")
def list_imports(name: str, who: CurrentUser, cursor: Cursor = None, limit: Limit = 50) -> Page[ImportJobRead]:
    from server.imports.service import list_jobs

    require_reader(who, name)
    before = cursor_int(cursor)
    found = run_in_transaction(lambda db: list_jobs(db, dataset=name, before=before, limit=limit + 1))  # may fail dead jobs
    return page_from(found, limit, lambda j: j.id)


@router.get(
    "/datasets/{name}/export",
    summary="Download a revision: parquet, jsonl (zip when it has image files) or imagefolder (zip)",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}, "application/octet-stream": {}}}},
)
def export(
    name: str,
    who: CurrentUser,
    rev: str = Query(description="Revision to export"),
    format: str = Query("parquet", pattern="^(parquet|jsonl|imagefolder)$"),
) -> FileResponse:
    from server.datasets.datasets import get_dataset
    from server.datasets.exporting import export_rows, iter_rows
    from server.datasets.history import resolve_rev
    from server.datasets.snapshot import iter_snapshot

    require_reader(who, name)
    store = blob_store()
    work = Path(tempfile.mkdtemp(prefix="s2-export-"))
    cleanup = BackgroundTask(shutil.rmtree, work, ignore_errors=True)
    suffix = {"parquet": ".parquet", "jsonl": ".jsonl", "imagefolder": ""}[format]
    out = work / "out" / f"{name}{suffix}"
    try:

        def run(db):
            ds = get_dataset(db, name)
            commit = resolve_rev(db, ds, rev)
            export_rows(
                iter_rows(iter_snapshot(db, store, commit.pk)),
                out=out,
                fmt=format,
                modality=ds.modality,
                labels=list(ds.labels),
                blobs=store,
            )
            return commit.id

        commit_id = read(run)
        produced = list(out.parent.iterdir())
        if len(produced) == 1 and produced[0].is_file():
            return FileResponse(produced[0], filename=f"{name}-{commit_id[:12]}{suffix}", background=cleanup)
        archive = shutil.make_archive(str(work / f"{name}-{commit_id[:12]}"), "zip", out.parent)
        return FileResponse(archive, media_type="application/zip", filename=Path(archive).name, background=cleanup)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
