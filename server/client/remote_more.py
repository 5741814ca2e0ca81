"""Parts of the remote backend: users, and the data engine (RemoteBackend mixes them in; self._call is its)."""

from server.client.paths import q


class RemotePeople:
    """Users and tokens over HTTP."""

    def add_user(self, name, role, datasets):
        from server.auth.schemas import TokenIssued

        return TokenIssued.model_validate(
            self._call("POST", "/users", json_body={"name": name, "role": role, "datasets": datasets})["token"]
        )

    def issue_token(self, name, label):
        from server.auth.schemas import TokenIssued

        return TokenIssued.model_validate(self._call("POST", f"/users/{q(name)}/tokens", json_body={"label": label}))

    def revoke_token(self, token_id):
        from server.auth.schemas import TokenRead

        return TokenRead.model_validate(self._call("DELETE", f"/tokens/{token_id}"))

    def list_users(self):
        from server.auth.schemas import UserRead

        return [UserRead.model_validate(u) for u in self._all("/users")]

    def list_audit(self, actor, limit):
        from server.auth.schemas import AuditRead

        return [AuditRead.model_validate(e) for e in self._all("/audit", {"actor": actor}, limit)]

    def list_tokens(self, name):
        from server.auth.schemas import TokenRead

        return [TokenRead.model_validate(t) for t in self._all(f"/users/{q(name)}/tokens")]

    def assign(self, name, dataset, remove):
        from server.auth.schemas import UserRead

        return UserRead.model_validate(self._call("DELETE" if remove else "PUT", f"/datasets/{q(dataset)}/members/{q(name)}"))

    def review_add(self, name, queue, items, suggestions=None):
        done = {"added": 0, "updated": 0}
        suggestions = suggestions or {}
        for start in range(0, len(items), 10_000):
            body = {
                "items": [{"key": k, "score": s, "reason": r, "suggested": suggestions.get(k)} for k, s, r in items[start : start + 10_000]]
            }
            answer = self._call("POST", f"/datasets/{q(name)}/queues/{q(queue)}", json_body=body)
            done = {k: done[k] + answer[k] for k in done}
        return done["added"], done["updated"]

    def review_list(self, name, queue, limit):
        return self._all(f"/datasets/{q(name)}/queues/{q(queue)}", limit=limit)

    def review_remove(self, name, queue, keys):
        query = {"key": keys} if keys else None
        return self._call("DELETE", f"/datasets/{q(name)}/queues/{q(queue)}", query=query)["removed"]


class RemoteEngine:
    """The data engine over HTTP: queues, suggestions, consensus, slices, lineage."""

    def accept_suggestions(self, name, queue, keys, branch):
        query = {"branch": branch} if branch else None
        return self._call("POST", f"/datasets/{q(name)}/queues/{q(queue)}/accept", json_body={"keys": keys}, query=query)

    def keep_labels(self, name, queue, keys):
        return self._call("POST", f"/datasets/{q(name)}/queues/{q(queue)}/keep", json_body={"keys": keys})["kept"]

    def queue_neighbours(self, name, queue, key, k):
        return self._call("GET", f"/datasets/{q(name)}/queues/{q(queue)}/neighbours", query={"key": key, "k": k})

    def example_lineage(self, name, key):
        return self._call("GET", f"/datasets/{q(name)}/lineage", query={"key": key})

    def model_lineage(self, ref):
        return self._call("GET", f"/models/{q(ref)}/lineage")

    def set_consensus(self, name, queue, votes, branch):
        return self._call("PUT", f"/datasets/{q(name)}/queues/{q(queue)}/consensus", json_body={"votes": votes, "branch": branch})

    def vote(self, name, queue, key, label):
        return self._call("POST", f"/datasets/{q(name)}/queues/{q(queue)}/votes", json_body={"key": key, "label": label})

    def resolve_dispute(self, name, key, label, branch):
        return self._call("POST", f"/datasets/{q(name)}/disputes/resolve", json_body={"key": key, "label": label, "branch": branch})

    def agreement(self, name, queue):
        return self._call("GET", f"/datasets/{q(name)}/queues/{q(queue)}/agreement")

    def add_slice(self, name, slice_name, keys, query, rev, minimum):
        body = {"name": slice_name, "keys": keys, "query": query, "rev": rev, "minimum": minimum}
        return self._call("POST", f"/datasets/{q(name)}/slices", json_body=body)

    def list_slices(self, name):
        return self._call("GET", f"/datasets/{q(name)}/slices")

    def remove_slice(self, name, slice_name):
        self._call("DELETE", f"/datasets/{q(name)}/slices/{q(slice_name)}")

    def model_analysis(self, ref):
        from server.errors import NotFound

        try:
            return self._call("GET", f"/models/{q(ref)}/analysis")
        except NotFound:
            return None
