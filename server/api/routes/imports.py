"""Imports by upload (multipart) and exports by download."""

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, File, Query, Response, UploadFile, status
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from server.api import problems
from server.api.deps import CurrentUser, blob_store, read, write
from server.api.schemas import ImportRead
from server.auth.policy import require_engineer, require_reader
from server.config import get_settings
from server.datasets import uploads
from server.errors import InvalidInput, NothingToCommit

router = APIRouter(tags=["imports"])


@router.post(
    "/datasets/{name}/imports",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportRead,
    summary="Upload files and import them as one commit (upsert by key; all or nothing)",
    description="Send one table (.csv/.jsonl/.parquet) with the images it names, image files, or an archive "
    "(.zip/.tar/.tar.gz) of a table or of LABEL/FILE folders. A bad file is named in the error; "
    "nothing is committed unless every example is valid.",
    responses={**problems.responses(413), **problems.CONFLICT},
)
def upload(
    name: str,
    who: CurrentUser,
    response: Response,
    files: list[UploadFile] = File(description="The files to import"),
    branch: str | None = Query(None, description="Default: the default branch"),
    message: str | None = Query(None, description="Commit message (default: 'upload FILES')"),
) -> ImportRead:
    from server.datasets.commits import compact_after, upsert_rows
    from server.datasets.history import resolve_rev
    from server.datasets.importing import read_source
    from server.datasets.service import commit_read, get_branch, get_dataset

    require_engineer(who, "import data")
    limit = get_settings().upload_max_bytes
    store = blob_store()
    ds = read(lambda db: get_dataset(db, name))
    modality, labels = ds.modality, list(ds.labels)
    work = Path(tempfile.mkdtemp(prefix="s2-upload-"))
    upload = None
    try:
        upload = uploads.save_upload([(f.filename, f.file) for f in files], work, limit)
        source = uploads.choose_source(upload, labels)
        try:
            rows = read_source(source, modality, labels, store, confine=upload.root, members=upload.members)
        except InvalidInput as exc:  # name the upload's files, not our temporary folder
            raise type(exc)(str(exc).replace(f"{upload.root}/", "").replace(str(upload.root), "the upload")) from None
    finally:
        if upload is not None:
            upload.close()
        shutil.rmtree(work, ignore_errors=True)
    label = message or f"upload {', '.join(f.filename or '?' for f in files)}"[:500]

    def commit_rows(db):
        dataset = get_dataset(db, name)
        return commit_read(
            upsert_rows(db, store, dataset=dataset, branch=get_branch(db, dataset, branch), rows=rows, message=label, author=who.name)
        )

    try:
        made = write(
            who, "dataset.import", f"{name}/{branch or 'default'}", commit_rows, detail=lambda c: {"commit": c.id, "examples": len(rows)}
        )
    except NothingToCommit:
        head = read(lambda db: resolve_rev(db, get_dataset(db, name), branch or ds.default_branch))
        response.status_code = status.HTTP_200_OK
        return ImportRead(commit=head.id, examples=len(rows), changes=0, rows=head.row_count)
    compact_after(store, made.id)
    return ImportRead(commit=made.id, examples=len(rows), changes=made.changes, rows=made.rows)


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
    from server.datasets.exporting import export_rows, iter_rows
    from server.datasets.history import resolve_rev
    from server.datasets.service import get_dataset
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
