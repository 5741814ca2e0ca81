"""The local backend's users and merge requests."""

from server.client.units import _audited, _author, _blobs
from server.db import run_read


class LocalPeople:
    """Users and merge requests on the local store (a part of LocalBackend)."""

    # users (the local store is administered directly; the audit trail names the CLI user)
    def list_audit(self, actor: str | None, limit: int):
        from server.auth.service import list_audit

        return run_read(lambda db: list_audit(db, limit=limit, actor=actor))

    def _admin_write(self, action: str, target: str, work, detail: dict | None = None):
        return _audited(action, target, work, (lambda _: detail) if detail else None)

    def add_user(self, name: str, role: str, datasets: list[str]):
        from server.auth.service import assign, create_user, issue_token

        def work(db):
            create_user(db, name=name, role=role)
            for ds in datasets:
                assign(db, user=name, dataset=ds)
            return issue_token(db, user=name, label="first token")

        return self._admin_write("user.create", name, work, {"role": role, "datasets": datasets})

    def issue_token(self, name: str, label: str | None):
        from server.auth.service import issue_token

        return self._admin_write("token.issue", name, lambda db: issue_token(db, user=name, label=label))

    def revoke_token(self, token_id: int):
        from server.auth.schemas import Principal
        from server.auth.service import revoke_token

        return self._admin_write(
            "token.revoke", str(token_id), lambda db: revoke_token(db, token_id=token_id, by=Principal(name=_author(), role="admin"))
        )

    def list_users(self):
        from server.auth.service import list_users

        return run_read(lambda db: list_users(db, limit=1_000_000))

    def list_tokens(self, name: str):
        from server.auth.service import list_tokens

        return run_read(lambda db: list_tokens(db, user=name))

    def assign(self, name: str, dataset: str, remove: bool):
        from server.auth.service import assign

        return self._admin_write(
            "member.remove" if remove else "member.add",
            f"{dataset}/{name}",
            lambda db: assign(db, user=name, dataset=dataset, assigned=not remove),
        )

    def review_add(self, name: str, queue: str, items: list[tuple[str, float, str | None]], suggestions: dict[str, str] | None = None):
        from labeling.review import add_items

        blobs = _blobs()
        return _audited(
            "review.add",
            f"{name}/{queue}",
            lambda db: add_items(db, blobs, dataset=name, queue=queue, items=items, by=_author(), suggestions=suggestions),
            lambda r: {"added": r[0], "updated": r[1]},
        )

    def review_list(self, name: str, queue: str, limit: int):
        from labeling.review import list_items

        found = run_read(lambda db: list_items(db, dataset=name, queue=queue, after=None, limit=limit))
        return [
            {
                "key": r.key,
                "score": r.score,
                "reason": r.reason,
                "added_by": r.added_by,
                "model_id": r.model_id,
                "suggested": r.suggested,
                "confidence": r.confidence,
                "given": r.given,
            }
            for r in found
        ]

    # merge requests: the routes' service calls; the CLI user holds an engineer's rights on the local store, so
    # approves and merges, and resolves or closes any request (a server allows the last two to its author or an engineer)
    def mr_open(self, name: str, source: str, target: str | None, title: str, description: str) -> dict:
        from server.merge_requests.service import open_request

        store, who = _blobs(), _author()
        return _audited(
            "merge_request.open",
            name,
            lambda db: open_request(
                db, store, dataset=name, source=source, target=target, title=title, description=description, author=who
            ),
            detail=lambda r: {"number": r.number, "source": r.source, "target": r.target},
        ).model_dump(mode="json")

    def mr_list(self, name: str, state: str | None) -> list[dict]:
        """Every request of NAME (in state, when given), newest first, read 1000 at a time."""
        from server.merge_requests.service import list_requests

        found, before = [], None
        while True:
            page = run_read(lambda db: list_requests(db, dataset=name, state=state, before=before, limit=1000))
            found += [r.model_dump(mode="json") for r in page]
            if len(page) < 1000:
                return found
            before = page[-1].number

    def mr_get(self, name: str, number: int) -> dict:
        from server.merge_requests.service import request_detail

        store = _blobs()
        return run_read(lambda db: request_detail(db, store, dataset=name, number=number)).model_dump(mode="json")

    def mr_comment(self, name: str, number: int, body: str) -> dict:
        from server.merge_requests.service import add_comment

        who = _author()
        return _audited(
            "merge_request.comment", f"{name}!{number}", lambda db: add_comment(db, dataset=name, number=number, author=who, body=body)
        ).model_dump(mode="json")

    def mr_approve(self, name: str, number: int) -> dict:
        from server.merge_requests.service import approve

        who = _author()
        return _audited(
            "merge_request.approve", f"{name}!{number}", lambda db: approve(db, dataset=name, number=number, by=who)
        ).model_dump(mode="json")

    def mr_resolve(self, name: str, number: int, key: str, take: str) -> dict:
        from server.merge_requests.service import resolve

        store, who = _blobs(), _author()
        return _audited(
            "merge_request.resolve",
            f"{name}!{number}",
            lambda db: resolve(db, store, dataset=name, number=number, key=key, take=take, by=who),
            detail=lambda r: {"key": r.key, "take": r.take},
        ).model_dump(mode="json")

    def mr_merge(self, name: str, number: int) -> dict:
        from server.datasets.compaction import compact_after
        from server.merge_requests.service import merge_request

        store, who = _blobs(), _author()
        done = _audited(
            "merge_request.merge",
            f"{name}!{number}",
            lambda db: merge_request(db, store, dataset=name, number=number, by=who),
            detail=lambda r: {"head": r.merge_commit},
        )
        compact_after(store, done.merge_commit)
        return done.model_dump(mode="json")

    def mr_close(self, name: str, number: int) -> dict:
        from server.merge_requests.service import close_request

        done = _audited("merge_request.close", f"{name}!{number}", lambda db: close_request(db, dataset=name, number=number))
        return done.model_dump(mode="json")

    def set_password(self, name: str, password: str | None):
        from server.auth.service import user_read
        from server.auth.signin import set_password

        def work(db):
            set_password(db, name=name, password=password)
            return user_read(db, name)

        return self._admin_write("user.password", name, work, {"removed": password is None})

    def set_user(self, name: str, role: str | None, disabled: bool | None):
        from server.auth.service import set_role

        return self._admin_write(
            "user.update", name, lambda db: set_role(db, name=name, role=role, disabled=disabled), {"role": role, "disabled": disabled}
        )
