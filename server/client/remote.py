"""The CLI's backend on an s2 server: every command is one or a few REST calls."""

import shutil
import tempfile
import zipfile
from pathlib import Path

from server.client.backend import Backend
from server.client.http import Http
from server.client.paths import API, q, qk
from server.client.remote_labelstudio import RemoteLabelStudio
from server.client.remote_more import RemoteEngine, RemotePeople
from server.errors import InvalidInput


class RemoteBackend(RemotePeople, RemoteEngine, RemoteLabelStudio, Backend):
    """The same methods as LocalBackend, over HTTP (users and the data engine in remote_more.py, Label Studio in its own)."""

    remote = True

    def __init__(self, url: str, token: str | None):
        self.http = Http(url, token)

    def _call(self, method: str, path: str, **kw):
        return self.http.call(method, API + path, **kw)

    def _all(self, path: str, query: dict | None = None, limit: int | None = None) -> list[dict]:
        return list(self.http.pages(API + path, query, limit))

    # datasets and refs
    def create_dataset(self, name, modality, labels):
        from server.datasets.schemas import DatasetRead

        return DatasetRead.model_validate(self._call("POST", "/datasets", json_body={"name": name, "modality": modality, "labels": labels}))

    def list_datasets(self):
        from server.datasets.schemas import DatasetRead

        return [DatasetRead.model_validate(d) for d in self._all("/datasets")]

    def list_branches(self, name):
        from server.datasets.schemas import BranchRead

        return [BranchRead.model_validate(b) for b in self._all(f"/datasets/{q(name)}/branches")]

    def create_branch(self, name, new, from_rev):
        from server.datasets.schemas import BranchRead

        return BranchRead.model_validate(self._call("POST", f"/datasets/{q(name)}/branches", json_body={"name": new, "from": from_rev}))

    def set_protected(self, name, branch, protected):
        from server.datasets.schemas import BranchRead

        return BranchRead.model_validate(
            self._call("PATCH", f"/datasets/{q(name)}/branches/{q(branch)}", json_body={"protected": protected})
        )

    def create_tag(self, name, tag, rev):
        return self._call("POST", f"/datasets/{q(name)}/tags", json_body={"name": tag, "rev": rev})["commit"]

    def list_tags(self, name):
        return [(t["name"], t["commit"]) for t in self._all(f"/datasets/{q(name)}/tags")]

    def delete_branch(self, name, branch):
        return self._call("DELETE", f"/datasets/{q(name)}/branches/{q(branch)}")

    def delete_tag(self, name, tag):
        return self._call("DELETE", f"/datasets/{q(name)}/tags/{q(tag)}")

    def delete_dataset(self, name):
        return self._call("DELETE", f"/datasets/{q(name)}")

    def workers_listening(self, queue):
        return self._call("GET", "/workers", query={"queue": queue})

    # edits and commits
    def stage(self, name, branch, edits):
        """Stage edits, each with the version of its example as it is on the branch now, as the workbench sends it:
        a labeler's edit needs one, and an edit someone stages between this read and the write is a conflict."""
        from server.datasets.schemas import StagedRead

        versions = self._versions(name, branch, [k for k, _, _ in edits])
        body = {
            "edits": [
                {"key": k, "label": None if remove else label, "remove": remove, "version": versions.get(k)} for k, label, remove in edits
            ]
        }
        return [
            StagedRead.model_validate(s) for s in self._call("POST", f"/datasets/{q(name)}/edits", json_body=body, query={"branch": branch})
        ]

    def _versions(self, name, branch, keys: list[str]) -> dict[str, str]:
        """The current version of each key on branch (its staged edit included), in the fewest requests: one read
        per key, or pages of the whole revision when they are fewer. A key that is not there is NotFound, as
        staging it would be; an unknown dataset or branch is left to the write to name."""
        from server.errors import NotFound

        try:
            if len(keys) > 10:
                rows = self._call("GET", f"/datasets/{q(name)}/commits/{q(branch or 'HEAD')}")["rows"]
                if -(-rows // 1000) < len(keys):  # fewer pages of 1000 examples than keys
                    wanted = set(keys)
                    found = self.http.pages(f"{API}/datasets/{q(name)}/examples", {"rev": branch})
                    versions = {e["key"]: e["version"] for e in found if e["key"] in wanted}
                    missing = next((k for k in keys if k not in versions), None)
                    if missing is not None:
                        where = f"branch '{branch}'" if branch else "the default branch"
                        raise NotFound(f"no example '{missing}' on {where} of dataset '{name}'")
                    return versions
            return {key: self._call("GET", f"/datasets/{q(name)}/examples/{qk(key)}", query={"rev": branch})["version"] for key in keys}
        except NotFound as exc:
            if str(exc).startswith("no example '"):
                raise
            return {}  # no such dataset or branch: the write says so, in its own words

    def list_staged(self, name, branch):
        from server.datasets.schemas import StagedRead

        return [StagedRead.model_validate(s) for s in self._all(f"/datasets/{q(name)}/edits", {"branch": branch})]

    def unstage(self, name, branch, keys):
        if keys is None:
            done = self._call("DELETE", f"/datasets/{q(name)}/edits", query={"branch": branch})
            return done["dropped"], done.get("kept", 0)
        return sum(self._call("DELETE", f"/datasets/{q(name)}/edits/{qk(k)}", query={"branch": branch})["dropped"] for k in keys), 0

    def commit(self, name, branch, message):
        from server.datasets.schemas import CommitOutcome

        return CommitOutcome.model_validate(
            self._call("POST", f"/datasets/{q(name)}/commits", json_body={"message": message, "branch": branch})
        )

    def merge(self, name, source, into, message, *, strategy=None, resolutions=None):
        body = {"source": source, "into": into, "message": message}
        if strategy is not None:
            body["strategy"] = strategy
        if resolutions:
            body["resolutions"] = resolutions
        done = self._call("POST", f"/datasets/{q(name)}/merges", json_body=body)
        return done["outcome"], done["head"], done["changes"]

    def pending_merge(self, name, into):
        return self._call("GET", f"/datasets/{q(name)}/merges/pending", query={"into": into})

    def resolve_merge(self, name, into, key, resolution, source):
        return self._call(
            "PUT", f"/datasets/{q(name)}/merges/pending/resolutions/{qk(key)}", json_body=resolution, query={"into": into, "source": source}
        )

    def abort_merge(self, name, into):
        target = into or self.pending_merge(name, None)["into"]
        self._call("DELETE", f"/datasets/{q(name)}/merges/pending", query={"into": target})
        return target

    # history
    def log(self, name, rev, limit):
        from server.datasets.schemas import CommitRead

        return [CommitRead.model_validate(c) for c in self._all(f"/datasets/{q(name)}/commits", {"rev": rev}, limit)]

    def diff(self, name, rev_a, rev_b):
        """The whole diff, gathered from its pages."""
        result = {"added": [], "removed": [], "relabeled": [], "modified": []}
        cursor = None
        while True:
            page = self._call("GET", f"/datasets/{q(name)}/diff", query={"a": rev_a, "b": rev_b, "cursor": cursor, "limit": 1000})
            for part in result:
                result[part].extend(page[part])
            cursor = page.get("next_cursor")
            if not cursor:
                return result

    def blame(self, name, key, rev):
        from server.datasets.schemas import BlameEntry

        return [BlameEntry.model_validate(e) for e in self._all(f"/datasets/{q(name)}/blame/{qk(key)}", {"rev": rev})]

    def show(self, name, key, rev):
        ex = self._call("GET", f"/datasets/{q(name)}/examples/{qk(key)}", query={"rev": rev})
        return {k: ex[k] for k in ("key", "label", "split", "input", "meta")}

    def checkout(self, name, rev, out: Path, force):
        """Make `out` a working folder holding rev, over HTTP: pages of examples, the diff's pages, media."""
        import json as _json

        from server.cli.common import progress
        from server.datasets.checkout import Revision, checkout
        from server.datasets.rows import Row

        ds = self._call("GET", f"/datasets/{q(name)}")
        commit = self._commit_id(name, rev)

        def row_of(e: dict) -> Row:
            meta = _json.dumps(e["meta"], sort_keys=True, separators=(",", ":")) if e["meta"] else None
            return Row(e["key"], e["input"], e["label"], e["split"], meta, e.get("inline"))

        def rows():
            for e in self.http.pages(f"{API}/datasets/{q(name)}/examples", {"rev": commit, "limit": 1000}):
                yield row_of(e)

        def changes_since(held: str):
            diff = self.diff(name, held, commit)
            keys = sorted({*diff["added"], *diff["removed"], *(r["key"] for r in diff["relabeled"]), *diff["modified"]})
            removed = set(diff["removed"])
            for key in keys:
                yield (
                    key,
                    None if key in removed else row_of(self._call("GET", f"/datasets/{q(name)}/examples/{qk(key)}", query={"rev": commit})),
                )

        def read(row: Row) -> bytes:
            if row.inline is not None:
                return row.inline.encode("utf-8")
            return self.http.get_bytes(f"{API}/datasets/{q(name)}/media/{row.input}")

        revision = Revision(
            dataset=name, commit=commit, modality=ds["modality"], labels=ds["labels"], rows=rows, changes_since=changes_since, read=read
        )
        with progress(f"checking out {commit[:12]}") as bar:
            return checkout(revision, Path(out), force=force, tick=bar.update).__dict__

    # moving data in and out
    def import_(self, name, source: Path, branch, message):
        """Upload source (a folder is zipped; a table travels with the image files it names)."""
        source = Path(source)
        if not source.exists():
            raise InvalidInput(f"import source '{source}' does not exist")
        with tempfile.TemporaryDirectory(prefix="s2-upload-") as tmp:
            if source.is_dir():
                files = [_zip_folder(source, Path(tmp) / f"{source.name or 'upload'}.zip")]
            else:
                files = _table_with_images(source, Path(tmp))
            query = {"branch": branch, "message": message or f"import {source.name}"}
            job = self.http.upload(f"{API}/datasets/{q(name)}/imports", files, query)
        return self._follow_import(job)

    def _follow_import(self, job: dict) -> dict:
        """Poll an import job to its end with a progress bar; its result, or its error raised."""
        import time

        from server.cli.common import progress

        phase, done = None, 0
        with progress(f"importing ({job['source'][:40]})") as bar:
            while job["state"] not in ("succeeded", "failed"):
                time.sleep(0.2)
                job = self._call("GET", f"/imports/{job['id']}")
                if job["phase"] and job["phase"] != phase:
                    phase, done = job["phase"], 0
                    bar.reset()
                    bar.set_description(phase)
                bar.update(max(0, job["rows_done"] - done))
                done = max(done, job["rows_done"])
        if job["state"] == "failed":
            raise InvalidInput(job["error"] or f"import job {job['id']} failed")
        return {"commit": job["commit"], "examples": job["examples"], "changes": job["changes"], "rows": job["rows"]}

    def list_imports(self, name, limit):
        return self._all(f"/datasets/{q(name)}/imports", None, limit)

    def export(self, name, rev, out: Path, fmt):
        from server.datasets.exporting import check_target, images_dir_of

        out = Path(out)
        check_target(out)
        with tempfile.TemporaryDirectory(prefix=".s2-export-", dir=out.parent if out.parent.exists() else None) as tmp:
            got = Path(tmp) / "download"
            kind = self.http.download(f"{API}/datasets/{q(name)}/export", got, {"rev": rev, "format": fmt})
            commit = self._commit_id(name, rev)
            if "zip" not in kind:
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(got), out)
                return self._count(name, commit), commit
            unpacked = Path(tmp) / "unpacked"
            with zipfile.ZipFile(got) as zf:
                zf.extractall(unpacked)  # our own server's archive of one export
            main = next(p for p in unpacked.iterdir() if not p.name.endswith("-images"))
            side = [p for p in unpacked.iterdir() if p.name.endswith("-images")]
            out.parent.mkdir(parents=True, exist_ok=True)
            if side:
                shutil.move(str(side[0]), images_dir_of(out))
            if out.is_dir():
                out.rmdir()  # an empty folder the user made for us
            shutil.move(str(main), out)
            return self._count(name, commit), commit

    def _commit_id(self, name, rev) -> str:
        return self._call("GET", f"/datasets/{q(name)}/commits/{q(rev)}")["id"]

    def _count(self, name, commit) -> int:
        return self._call("GET", f"/datasets/{q(name)}/commits/{q(commit)}")["rows"]

    def fsck(self):
        report = self._call("POST", "/fsck")
        report.pop("ok", None)
        return report

    def gc(self, grace_s, dry_run):
        return self._call("POST", "/gc", query={"dry_run": str(dry_run).lower(), "grace_s": grace_s})

    # training
    def watch(self, name, branch, spec, folds=None):
        return self._call("PUT", f"/datasets/{q(name)}/watches/{qk(branch)}", json_body={"spec": spec, "folds": folds})

    def unwatch(self, name, branch):
        self._call("DELETE", f"/datasets/{q(name)}/watches/{qk(branch)}")

    def pin_eval(self, name, eval_name, rev, source, only_eval_split):
        return self._call(
            "POST",
            f"/datasets/{q(name)}/eval-pins",
            json_body={"name": eval_name, "rev": rev, "source": source, "only_eval_split": only_eval_split},
        )

    def submit_run(self, name, rev, spec, *, from_model=None, force=False, folds=None):
        from server.runs.schemas import RunRead

        body = {"rev": rev, "spec": spec, **({"from_model": from_model} if from_model else {}), **({"force": True} if force else {})}
        if folds is not None:
            body["folds"] = folds
        return RunRead.model_validate(self._call("POST", f"/datasets/{q(name)}/runs", json_body=body))

    def get_run(self, run_id):
        from server.runs.schemas import RunRead

        return RunRead.model_validate(self._call("GET", f"/runs/{run_id}"))

    def follow_run(self, run_id):
        """Yield the run each time it changes, until it ends (Server-Sent Events)."""
        from server.runs.schemas import RunRead

        for event, data in self.http.events(f"{API}/runs/{run_id}/events"):
            if event == "run":
                yield RunRead.model_validate(data)

    def list_runs(self, name, limit):
        from server.runs.schemas import RunRead

        return [RunRead.model_validate(r) for r in self._all("/runs", {"dataset": name}, limit)]

    def cancel_run(self, run_id):
        from server.runs.schemas import RunRead

        return RunRead.model_validate(self._call("POST", f"/runs/{run_id}/cancel"))

    def get_model(self, ref):
        from server.runs.schemas import ModelRead

        return ModelRead.model_validate(self._call("GET", f"/models/{q(ref)}"))

    def list_models(self, name):
        from server.runs.schemas import ModelRead

        return [ModelRead.model_validate(m) for m in self._all(f"/datasets/{q(name)}/models")]

    def compare(self, ref_a, ref_b):
        """The whole comparison, as `s2 compare --json` shows it: every page of flips, and the data diff."""
        result = self._call("GET", "/compare", query={"a": ref_a, "b": ref_b})
        while result["next_cursor"]:
            page = self._call("GET", "/compare", query={"a": ref_a, "b": ref_b, "cursor": result["next_cursor"]})
            for part in ("fixed", "broken", "flips"):
                result[part] += page[part]
            result["next_cursor"] = page["next_cursor"]
        del result["next_cursor"]
        result["data_diff"] = self.diff(ref_a.split("@", 1)[0], result["commits"]["a"], result["commits"]["b"])
        return result

    def promote(self, ref, stage, force, max_regression):
        if max_regression is not None:
            raise InvalidInput("--max-regression is the server's setting (S2_PROMOTE_MAX_REGRESSION) when using --server")
        return self._call("POST", f"/models/{q(ref)}/promote", json_body={"stage": stage, "force": force})

    # merge requests
    def _mr(self, name, number=None) -> str:
        return f"/datasets/{q(name)}/merge-requests" + ("" if number is None else f"/{number}")

    def mr_open(self, name, source, target, title, description):
        body = {"source": source, "target": target, "title": title, "description": description}
        return self._call("POST", self._mr(name), json_body=body)

    def mr_list(self, name, state):
        return self._all(self._mr(name), {"state": state})

    def mr_get(self, name, number):
        return self._call("GET", self._mr(name, number))

    def mr_comment(self, name, number, body):
        return self._call("POST", f"{self._mr(name, number)}/comments", json_body={"body": body})

    def mr_approve(self, name, number):
        return self._call("POST", f"{self._mr(name, number)}/approve")

    def mr_resolve(self, name, number, key, take):
        return self._call("PUT", f"{self._mr(name, number)}/resolutions/{qk(key)}", json_body={"take": take})

    def mr_merge(self, name, number):
        return self._call("POST", f"{self._mr(name, number)}/merge")

    def mr_close(self, name, number):
        return self._call("POST", f"{self._mr(name, number)}/close")

    def set_password(self, name, password):
        from server.auth.schemas import UserRead

        return UserRead.model_validate(self._call("PUT", f"/users/{q(name)}/password", json_body={"password": password}))

    def set_user(self, name, role, disabled):
        from server.auth.schemas import UserRead

        body = {k: v for k, v in {"role": role, "disabled": disabled}.items() if v is not None}
        return UserRead.model_validate(self._call("PATCH", f"/users/{q(name)}", json_body=body))


def _zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zf:  # images are compressed already
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts):
                zf.write(path, path.relative_to(folder).as_posix())
    return target


def _table_with_images(table: Path, tmp: Path) -> list[Path]:
    """The table alone, or (when it names image files) a zip of it with those files at their relative paths."""
    from server.datasets.importing import table_image_paths

    images = table_image_paths(table)
    if not images:
        return [table]
    target = tmp / f"{table.stem}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zf:
        zf.write(table, table.name)
        for rel in images:
            path = table.parent / rel
            if not path.is_file():
                raise InvalidInput(f"import source '{table}': image file '{rel}' does not exist")
            zf.write(path, rel)
    return [target]
