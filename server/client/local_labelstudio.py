"""The local backend's Label Studio bridge: link, push, pull, webhook, over the same services as the API's routes.

Push, pull, connect and the webhook's registration talk to Label Studio and open their own short transactions
(never one held across a request to Label Studio); each is then recorded in the audit trail, as the API does.
"""

from server.client.units import _audited, _author, _blobs
from server.db import run_read


def _feed(bar):  # noqa: ANN001, ANN202  (a tqdm bar)
    """A service's progress callback (done, total or None) moving a progress bar."""

    def tick(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return tick


def _link_detail(done: dict) -> dict:
    return {"url": done["url"], "project": done["project"], "branch": done["branch"]}


def _pull_counts(done: dict) -> dict:
    return {k: v for k, v in done.items() if not k.endswith("_list") and k != "status"}


class LocalLabelStudio:
    """The Label Studio bridge on the local store (a part of LocalBackend)."""

    def labelstudio_connect(
        self, name: str, url: str, token: str, branch: str | None, project: int | None, title: str | None, webhook: bool
    ) -> dict:
        from labeling.labelstudio.bridge import connect
        from server.errors import S2Error

        done = connect(dataset=name, url=url, token=token, branch=branch, project=project, title=title, by=_author())
        _audited("labelstudio.connect", name, lambda db: done, _link_detail)
        if webhook:
            try:
                done = self._webhook_on(name)
            except S2Error as exc:
                raise type(exc)(
                    f"linked '{name}' to Label Studio project {done['project']}, but its webhook was not registered: {exc}",
                    extra=exc.extra,
                ) from None
        return done

    def labelstudio_status(self, name: str) -> dict:
        from labeling.labelstudio.bridge import status

        return run_read(lambda db: status(db, dataset=name))

    def labelstudio_push(self, name: str, queue: str, rev: str | None, limit: int | None) -> dict:
        from labeling.labelstudio.bridge import push
        from server.cli.common import progress
        from server.config import get_settings

        settings = get_settings()
        with progress(f"pushing {name} to Label Studio", total=limit, unit="task") as bar:
            done = push(
                _blobs(),
                dataset=name,
                queue=queue,
                rev=rev,
                limit=limit,
                public_url=settings.public_url,
                ttl_s=settings.media_url_ttl_s,
                batch=settings.labelstudio_batch,
                progress=_feed(bar),
            )
        detail = {k: done[k] for k in ("pushed", "with_predictions", "recovered", "queue")} | {"rev": rev}
        _audited("labelstudio.push", name, lambda db: done, lambda r: detail)
        return done

    def labelstudio_pull(self, name: str) -> dict:
        from labeling.labelstudio.pull import pull
        from server.cli.common import progress
        from server.config import get_settings

        with progress(f"pulling {name} from Label Studio", unit="task") as bar:
            done = pull(_blobs(), dataset=name, by=_author(), batch=get_settings().labelstudio_batch, progress=_feed(bar))
        _audited("labelstudio.pull", name, lambda db: done, _pull_counts)
        return done

    def labelstudio_tasks(self, name: str, state: str, limit: int) -> list[dict]:
        from labeling.labelstudio.bridge import conflicts

        return run_read(lambda db: conflicts(db, dataset=name, state=state, limit=limit))

    def labelstudio_webhook(self, name: str, on: bool) -> dict:
        if on:
            return self._webhook_on(name)
        from labeling.labelstudio.webhook import disable

        done = disable(dataset=name)
        _audited("labelstudio.webhook.off", name, lambda db: done, _link_detail)
        return done

    def _webhook_on(self, name: str) -> dict:
        from labeling.labelstudio.webhook import enable
        from server.config import get_settings

        done = enable(dataset=name, public_url=get_settings().public_url)
        _audited("labelstudio.webhook.on", name, lambda db: done, _link_detail)
        return done

    def labelstudio_disconnect(self, name: str, force: bool) -> dict:
        from labeling.labelstudio import bridge, webhook

        hooked = run_read(lambda db: bridge.get_link(db, name)[1].webhook_id is not None)
        removed = hooked and not force
        if removed:
            webhook.disable(dataset=name)
        return _audited("labelstudio.disconnect", name, lambda db: bridge.disconnect(db, dataset=name) | {"webhook_removed": removed})
