"""The peer of bench/api_load.py: a real Label Studio server on the same PostgreSQL, its users and tasks."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

from _load_env import BENCH, LABELS, LS_BIN, System, _http, check, free_port, wait_http
from _training_env import CommandFailed


class LabelStudioSystem(System):
    name, key = "Label Studio", "ls"

    def setup(self, csv_path: Path) -> None:
        db = self.dbs.create("s2bench_ls")
        self.db = db
        self.token = uuid.uuid4().hex
        data = self.tmp / "ls-data"
        home = self.tmp / "ls-home"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("S2_", "LABEL_STUDIO_", "DJANGO_", "POSTGRE_"))}
        self.env.update(
            {
                "HOME": str(home),
                "LABEL_STUDIO_BASE_DATA_DIR": str(data),
                "LABEL_STUDIO_USERNAME": "admin@example.com",
                "LABEL_STUDIO_PASSWORD": uuid.uuid4().hex,
                "LABEL_STUDIO_USER_TOKEN": self.token,
                "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
                "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
                "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
                "SENTRY_DSN": "",
                "FRONTEND_SENTRY_DSN": "",
                "DJANGO_DB": "default",
                "POSTGRE_NAME": db,
                "POSTGRE_USER": "postgres",
                "POSTGRE_PASSWORD": "postgres",
                "POSTGRE_HOST": "127.0.0.1",
                "POSTGRE_PORT": "5432",
                "PATH": f"{LS_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.data_dir = data
        self.project = None

    def start(self) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.server = self.start_process(
            "label-studio",
            [LS_BIN / "label-studio", "start", "--internal-host", "127.0.0.1", "--port", port, "--no-browser", "--data-dir", self.data_dir],
            self.env,
        )
        # its first start migrates the database (~35 s); a busy port would silently become port+1: we poll ours
        wait_http(f"{self.base}/health", self.server, 300)
        with _http() as client:
            check(client.get(f"{self.base}/api/projects/", headers=self.auth), "Label Studio: the admin token")
        if not self.tokens:
            out = subprocess.run(
                [LS_BIN / "python", BENCH / "_ls_users.py", str(self.max_labelers)],
                env=self.env,
                cwd=self.tmp,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if out.returncode != 0:
                raise CommandFailed(f"adding Label Studio users failed:\n{out.stderr[-2000:]}")
            self.tokens = json.loads(out.stdout.strip().splitlines()[-1])

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Token {self.token}"}

    def reset(self) -> None:
        """A new project with the same tasks for each run: each run starts from tasks without annotations."""
        choices = "".join(f'<Choice value="{c}"/>' for c in LABELS)
        config = f'<View><Text name="text" value="$text"/><Choices name="label" toName="text" choice="single">{choices}</Choices></View>'
        with _http() as client:
            project = check(
                client.post(
                    f"{self.base}/api/projects/", headers=self.auth, json={"title": f"load {uuid.uuid4().hex[:6]}", "label_config": config}
                ),
                "Label Studio: create project",
            )
            self.project = project["id"]
            tasks = [{"key": key, "text": text} for key, _, text in self.examples]
            check(
                client.post(f"{self.base}/api/projects/{self.project}/import", headers=self.auth, json=tasks), "Label Studio: import tasks"
            )
            ids: dict[str, int] = {}
            page = 1
            while len(ids) < len(tasks):
                r = client.get(
                    f"{self.base}/api/projects/{self.project}/tasks/", headers=self.auth, params={"page": page, "page_size": 1000}
                )
                if r.status_code == 404:
                    break
                found = check(r, "Label Studio: list tasks")
                found = found.get("tasks", found.get("results", [])) if isinstance(found, dict) else found
                if not found:
                    break
                ids.update({t["data"]["key"]: t["id"] for t in found})
                page += 1
        if len(ids) != len(tasks):
            raise CommandFailed(f"Label Studio: imported {len(tasks)} tasks, listed {len(ids)}")
        self.ids = [ids[key] for key, _, _ in self.examples]

    def task_keys(self) -> list:
        return self.ids

    def verify(self, acks: list) -> dict:
        """Every acknowledged annotation (201 with its id) must be in the project's export with its choice."""
        with _http() as client:
            tasks = check(
                client.get(
                    f"{self.base}/api/projects/{self.project}/export",
                    headers=self.auth,
                    params={"exportType": "JSON", "download_all_tasks": "true"},
                ),
                "Label Studio: export",
            )
        stored = {}
        for task in tasks:
            for ann in task.get("annotations", []):
                choice = next((r["value"]["choices"][0] for r in ann.get("result", []) if r.get("type") == "choices"), None)
                stored[ann["id"]] = (task["id"], choice)
        lost = [a for a in acks if stored.get(a[2]) != (a[0], a[1])]
        return {
            "acked": len(acks),
            "keys": len({a[0] for a in acks}),
            "lost": len(lost),
            "lost_sample": lost[:5],
            "unacked_applied": max(0, len(stored) - len(acks)),
            "in_db": len(stored),
        }
