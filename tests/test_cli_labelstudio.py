"""`s2 labelstudio` on the local store, without a Label Studio server: each refusal is one stderr line naming the input
(the commands against a real Label Studio are in tests/labelstudio/)."""

import json
import socket


def closed_url() -> str:
    """The address of a port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_refusals_are_one_line_naming_the_input_and_link_nothing(cli):
    cli.ok("dataset", "create", "pets", "--modality", "text", "--labels", "cat,dog")
    line = cli.fails("labelstudio", "status", "pets")
    assert "'pets' is not linked to Label Studio" in line and "s2 labelstudio connect pets" in line, line
    for command in (("push", "pets"), ("pull", "pets"), ("tasks", "pets"), ("webhook", "pets", "--off"), ("disconnect", "pets")):
        assert "not linked" in cli.fails("labelstudio", *command), command
    assert "'nope'" in cli.fails("labelstudio", "status", "nope")

    line = cli.fails("labelstudio", "connect", "pets", "--url", "ftp://x", "--token", "t0ken")
    assert "ftp://x" in line and "http(s)://" in line and "t0ken" not in line, line
    closed = closed_url()
    line = cli.fails("labelstudio", "connect", "pets", "--url", closed, "--token", "t0ken")
    assert closed in line and "cannot be reached" in line and "t0ken" not in line, line
    for name in ("S2_LABEL_STUDIO_TOKEN", "LABEL_STUDIO_API_KEY"):
        cli.env.pop(name, None)
    proc = cli.run("labelstudio", "connect", "pets", "--url", closed)
    assert proc.returncode == 2 and "S2_LABEL_STUDIO_TOKEN" in proc.stderr, proc.stderr
    cli.env["LABEL_STUDIO_API_KEY"] = "from-env"  # the token from the environment: it gets as far as the network
    assert closed in cli.fails("labelstudio", "connect", "pets", "--url", closed)
    assert "not linked" in cli.fails("labelstudio", "status", "pets")  # nothing half-made
    assert "labelstudio" not in json.dumps(json.loads(cli.ok("audit", "--json")))  # a refusal is not audited


def test_a_link_made_in_the_store_shows_and_unlinks(cli):
    from labeling.labelstudio.models import LabelStudioLink
    from server.datasets.datasets import get_dataset
    from server.db import run_in_transaction

    cli.ok("dataset", "create", "pets", "--modality", "text", "--labels", "cat,dog")
    closed = closed_url()
    run_in_transaction(
        lambda db: db.add(
            LabelStudioLink(
                dataset_id=get_dataset(db, "pets").id, url=closed, token="tok", project=4, title="t", branch="main", created_by="me"
            )
        )
    )
    shown = cli.ok("labelstudio", "status", "pets")
    assert f"linked to Label Studio at {closed}" in shown and "tok" not in shown.replace("task", ""), shown
    status = json.loads(cli.ok("labelstudio", "status", "pets", "--json"))
    assert (status["project"], status["webhook"], status["tasks"]) == (4, False, 0) and "token" not in status
    assert json.loads(cli.ok("labelstudio", "tasks", "pets", "--state", "disputed", "--json")) == []
    assert closed in cli.fails("labelstudio", "pull", "pets")
    pushed = json.loads(cli.ok("labelstudio", "push", "pets", "--json"))  # nothing unlabeled: Label Studio is not asked
    assert pushed["pushed"] == 0
    proc = cli.run("labelstudio", "disconnect", "pets", "-q")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc
    assert "not linked" in cli.fails("labelstudio", "status", "pets")
    actions = [e["action"] for e in json.loads(cli.ok("audit", "--json"))]
    assert actions[:2] == ["labelstudio.disconnect", "labelstudio.push"], actions
