"""The remote backend's Label Studio bridge: the server talks to Label Studio (RemoteBackend mixes it in; self._call is its)."""

from server.client.paths import q


class RemoteLabelStudio:
    """The Label Studio bridge over HTTP (no progress: a push or pull is one request, answered when it is done)."""

    def labelstudio_connect(self, name, url, token, branch, project, title, webhook):
        body = {"url": url, "token": token, "branch": branch, "project": project, "title": title, "webhook": webhook}
        return self._call("PUT", f"/datasets/{q(name)}/labelstudio", json_body=body)

    def labelstudio_status(self, name):
        return self._call("GET", f"/datasets/{q(name)}/labelstudio")

    def labelstudio_push(self, name, queue, rev, limit):
        return self._call("POST", f"/datasets/{q(name)}/labelstudio/push", json_body={"queue": queue, "rev": rev, "limit": limit})

    def labelstudio_pull(self, name):
        return self._call("POST", f"/datasets/{q(name)}/labelstudio/pull")

    def labelstudio_tasks(self, name, state, limit):
        return self._call("GET", f"/datasets/{q(name)}/labelstudio/tasks", query={"state": state, "limit": limit})

    def labelstudio_webhook(self, name, on):
        return self._call("POST" if on else "DELETE", f"/datasets/{q(name)}/labelstudio/webhook")

    def labelstudio_disconnect(self, name, force):
        return self._call("DELETE", f"/datasets/{q(name)}/labelstudio", query={"force": "true" if force else None})
