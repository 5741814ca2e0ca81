"""The data engine end to end: a real worker cross-fits after training, the queues fill, labelers accept or keep."""

import csv
import json
import random

import pytest

from tests.factories import write_digits_folder
from tests.test_training import DIGITS_SPEC, spec_file, wait_until

production = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


def noisy_digits(cli, tmp_path, unlabeled: int = 60, held_out: int = 300) -> dict[str, str]:
    """digits imported clean, then 10% of them relabeled wrong in one commit (seeded); returns key -> true label.

    `unlabeled` more digits come in without labels (for the active-learning queue), and `held_out` others,
    correctly labeled, make dataset `clean`, pinned as an evaluation set of digits.
    """
    folder = write_digits_folder(tmp_path / "digits")
    labels = ",".join(str(d) for d in range(10))
    cli.ok("dataset", "create", "digits", "--modality", "image", "--labels", labels)
    paths = sorted(folder.rglob("*.png"))
    held = set(random.Random(1).sample(paths[unlabeled:], held_out))
    spare, paths = paths[:unlabeled], [p for p in paths[unlabeled:] if p not in held]
    clean = tmp_path / "clean.csv"
    clean.write_text(
        "key,label,image\n" + "".join(f"{p.relative_to(folder).as_posix()},{p.parent.name},{p.as_posix()}\n" for p in sorted(held))
    )
    cli.ok("dataset", "create", "clean", "--modality", "image", "--labels", labels)
    cli.ok("import", "clean", clean)
    cli.ok("dataset", "pin-eval", "digits", "clean", "--rev", "main", "--from-dataset", "clean")
    labeled = tmp_path / "labeled.csv"
    with labeled.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "label", "image"])
        w.writerows([p.relative_to(folder).as_posix(), p.parent.name, p.as_posix()] for p in paths)
        w.writerows([f"new/{p.name}", "", p.as_posix()] for p in spare)
    cli.ok("import", "digits", labeled)
    truth = {p.relative_to(folder).as_posix(): p.parent.name for p in paths}
    rng = random.Random(0)
    flipped = rng.sample(sorted(truth), len(truth) // 10)
    edits = tmp_path / "noise.csv"
    edits.write_text("key,label\n" + "".join(f"{k},{(int(truth[k]) + rng.randint(1, 9)) % 10}\n" for k in flipped))
    cli.ok("label", "digits", "--file", edits)
    cli.ok("commit", "digits", "-m", "10% of the labels made wrong")
    return {k: truth[k] for k in flipped}


@pytest.mark.slow(minutes=9)
@production
def test_label_errors_found_accepted_with_provenance_and_kept(cli, workers, tmp_path):
    flipped = noisy_digits(cli, tmp_path)
    workers(S2_ANALYSIS_FOLDS="5")  # the default cross-fitting, as a deployment has it
    # Trained to convergence on the noisy labels, a model learns the wrong ones by heart and loses accuracy on clean
    # digits (0.95-0.97 on the pinned set, against 0.99-1.0 for the same spec on correct labels); after six epochs it
    # has not yet (0.98-0.99 either way). This one is the baseline the fixed labels must beat.
    converged = spec_file(tmp_path, DIGITS_SPEC | {"epochs": 20}, name="converged.json")
    noisy = json.loads(cli.ok("train", "digits", "--spec", converged, "--folds", "0", "--wait", "--json"))
    model = json.loads(cli.ok("train", "digits", "--spec", spec_file(tmp_path, DIGITS_SPEC), "--wait", "--json"))
    analysis = wait_until(
        lambda: (a := json.loads(cli.ok("run", str(model["run"]), "--json")).get("analysis")) and a["state"] != "running" and a,
        timeout=600,
        what="the model's analysis",
    )
    assert analysis["state"] == "done", analysis
    assert analysis["folds"] == 5 and analysis["labeled"] == 1437 and analysis["examples"] == 1497 and analysis["crossfit_s"] > 0
    queue = json.loads(cli.ok("queue", "digits", "--kind", "label-errors", "-n", "100", "--json"))
    assert len(queue) == 100
    shown = cli.ok("run", str(model["run"]))
    assert "analysis  done: 5-fold cross-fitting of 1437 labeled examples" in shown
    hits = [item for item in queue if item["key"] in flipped]
    assert len(hits) >= 60, f"{len(hits)} of the top 100 are injected errors"
    assert sum(item["suggested"] == flipped[item["key"]] for item in hits) >= 0.9 * len(hits)
    assert all(item["given"] != item["suggested"] and 0 < item["confidence"] <= 1 for item in queue)
    text = cli.run("queue", "digits")  # the text listing: its header on stderr when piped, the rows on stdout
    assert text.stderr.splitlines()[0].split("\t")[:4] == ["KEY", "GIVEN", "SUGGESTED", "CONFIDENCE"]
    assert text.stdout.splitlines()[0].split("\t")[:3] == [queue[0]["key"], queue[0]["given"], queue[0]["suggested"]]

    # each suspect's nearest examples by the model's embeddings: mostly of the class the model suggests
    near = json.loads(cli.ok("queue", "neighbours", "digits", hits[0]["key"], "--json"))
    assert len(near) == 5 and hits[0]["key"] not in {n["key"] for n in near}
    assert [n["similarity"] for n in near] == sorted((n["similarity"] for n in near), reverse=True)
    agreeing = [
        sum(n["label"] == h["suggested"] for n in json.loads(cli.ok("queue", "neighbours", "digits", h["key"], "--json")))
        for h in hits[:10]
    ]
    assert sum(agreeing) >= 0.6 * 5 * len(agreeing), agreeing

    # the active-learning queue: the unlabeled digits, each with the model's guess as a pre-fill
    uncertain = json.loads(cli.ok("queue", "digits", "--kind", "uncertain", "-n", "1000", "--json"))
    assert len(uncertain) == 60 and all(i["key"].startswith("new/") and i["given"] is None and i["suggested"] for i in uncertain)

    # accept three suggestions: staged with their provenance, committed, shown by blame
    accepted = [item["key"] for item in hits[:40]]
    queue_given = {item["key"]: item["given"] for item in queue}
    done = json.loads(cli.ok("queue", "accept", "digits", *accepted, "--json"))
    assert [a["key"] for a in done] == accepted and all(a["source"] == f"suggested by {model['id']}, label-error queue" for a in done)
    cli.ok("commit", "digits", "-m", "accepted the engine's suggestions")
    blame = json.loads(cli.ok("blame", "digits", accepted[0], "--json"))
    assert blame[-1]["label"] == flipped[accepted[0]] and blame[-1]["source"] == f"suggested by {model['id']}, label-error queue"
    left = {i["key"] for i in json.loads(cli.ok("queue", "digits", "-n", "10000", "--json"))}
    assert not left & set(accepted)  # accepted suggestions leave the queue

    # keep a label: it leaves the queue and is remembered; accepting after a change is a conflict
    kept = next(item["key"] for item in queue if item["key"] not in accepted)
    assert json.loads(cli.ok("queue", "keep", "digits", kept, "--json")) == {"kept": 1}
    assert "no suggestion for example" in cli.fails("queue", "accept", "digits", kept)
    other = next(item for item in queue if item["key"] not in accepted and item["key"] != kept)
    cli.ok("label", "digits", other["key"], other["suggested"] if other["suggested"] != "0" else "1")  # someone else relabels it first
    said = cli.fails("queue", "accept", "digits", other["key"])
    assert f"example '{other['key']}' changed on branch 'main' since the model ranked it" in said
    cli.ok("unstage", "digits", other["key"])

    # accept the rest of the queue's suggestions and retrain: better on the clean pinned eval set than the noisy model
    rest = [i["key"] for i in json.loads(cli.ok("queue", "digits", "-n", "10000", "--json")) if i["key"] != other["key"]]
    cli.ok("queue", "accept", "digits", *rest[:300], "-q")
    cli.ok("commit", "digits", "-m", "the engine's suggestions, all of them")
    fixed = json.loads(cli.ok("train", "digits", "--spec", converged, "--folds", "0", "--wait", "--json"))
    noisy_clean, fixed_clean = noisy["eval_sets"]["clean"], fixed["eval_sets"]["clean"]
    assert fixed_clean["accuracy"] >= noisy_clean["accuracy"] + 0.01 and fixed_clean["loss"] < 0.5 * noisy_clean["loss"], (
        noisy_clean,
        fixed_clean,
    )
    wait_until(lambda: (json.loads(cli.ok("run", str(fixed["run"]), "--json")).get("analysis") or {}).get("state") == "done", timeout=300)

    # lineage both ways: a commit that calls every 1 a 7, the next model, and which commit moved its predictions
    ones = sorted(row["key"] for row in csv.DictReader((tmp_path / "labeled.csv").open()) if row["key"].startswith("1/"))
    (tmp_path / "sevens.csv").write_text("key,label\n" + "".join(f"{k},7\n" for k in ones))
    cli.ok("label", "digits", "--file", tmp_path / "sevens.csv")
    cli.ok("commit", "digits", "-m", "every 1 is a 7 now")
    second = json.loads(cli.ok("train", "digits", "--spec", spec_file(tmp_path, DIGITS_SPEC), "--folds", "0", "--wait", "--json"))
    wait_until(lambda: (json.loads(cli.ok("run", str(second["run"]), "--json")).get("analysis") or {}).get("state") == "done", timeout=300)
    moved = json.loads(cli.ok("lineage", second["id"], "--json"))
    assert moved["before"] == fixed["id"] and moved["moved"] > 0
    assert moved["commits"][0]["message"] == "every 1 is a 7 now", moved
    assert moved["commits"][0]["moved"] > len(ones) / 2 and set(moved["commits"][0]["keys"]) <= set(ones)
    seen = json.loads(cli.ok("lineage", "digits", accepted[0], "--json"))
    assert [e["model"] for e in seen] == [second["id"], fixed["id"], model["id"], noisy["id"]]
    assert [e["label"] for e in seen][1:] == [flipped[accepted[0]], queue_given[accepted[0]], queue_given[accepted[0]]]
    assert seen[0]["trained_on"] == (seen[0]["side"] == "train") and seen[0]["side"] in ("train", "eval")
    assert "no model of dataset 'digits' saw an example 'nope'" in cli.fails("lineage", "digits", "nope")


def test_suggestions_refuse_bad_input_and_name_it(cli, tmp_path):
    folder = write_digits_folder(tmp_path / "digits", limit=20)
    cli.ok("dataset", "create", "digits", "--modality", "image", "--labels", ",".join(str(d) for d in range(10)))
    cli.ok("import", "digits", folder)
    key = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))[0]
    said = cli.fails("review", "add", "digits", key, "--suggest", "eleven", "-Q", "label-errors")
    assert "suggested label 'eleven' is not in the label set" in said
    assert f"no suggestion for example '{key}' in the label-errors queue" in cli.fails("queue", "accept", "digits", key)
    assert "no example 'nope'" in cli.fails("review", "add", "digits", "nope", "--suggest", "3", "-Q", "label-errors")
    assert "folds 1: the data engine cross-fits with 2 to 20 folds, or 0 to turn it off" in cli.fails("train", "digits", "--folds", "1")
    assert "Invalid value for '--folds'" in cli.fails("train", "digits", "--folds", "21")
    cli.ok("review", "add", "digits", key, "--suggest", "3", "-Q", "label-errors")
    assert json.loads(cli.ok("queue", "digits", "--json"))[0]["suggested"] == "3"


def test_consensus_with_three_labelers_two_agreeing(cli, tmp_path, monkeypatch):
    folder = write_digits_folder(tmp_path / "digits", limit=30)
    cli.ok("dataset", "create", "digits", "--modality", "image", "--labels", ",".join(str(d) for d in range(10)))
    cli.ok("import", "digits", folder)
    cli.ok("branch", "create", "digits", "work")
    keys = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))[:5]
    cli.ok("review", "add", "digits", *keys, "-Q", "triple")
    assert "does not ask for votes" in cli.fails("queue", "vote", "digits", keys[0], "1", "-Q", "triple")
    cli.ok("queue", "consensus", "digits", "-Q", "triple", "--votes", "3", "--branch", "work")

    def vote(who: str, key: str, label: str) -> dict:
        monkeypatch.setenv("S2_AUTHOR", who)
        return json.loads(cli.ok("queue", "vote", "digits", key, label, "-Q", "triple", "--json"))

    for key in keys[:4]:  # ana and bo agree (on a label the example does not have yet), cy differs
        truth = str((int(key.split("/")[0]) + 2) % 10)
        assert vote("ana", key, truth)["votes"] == 1
        assert vote("bo", key, truth) == {"key": key, "votes": 2, "required": 3, "settled": None}  # no one sees the others' labels
        done = vote("cy", key, str((int(truth) + 1) % 10))
        assert done["settled"]["label"] == truth
        assert done["settled"]["source"] == f"consensus in queue triple: ana, bo chose {truth}; cy chose {(int(truth) + 1) % 10}"
    last = keys[4]  # three labelers, three labels: disputed
    for who, label in (("ana", "1"), ("bo", "2"), ("cy", "3")):
        done = vote(who, last, label)
    assert done["settled"] == {"label": None, "disputed": True}
    disputed = json.loads(cli.ok("review", "list", "digits", "-Q", "disputed", "--json"))
    assert [d["key"] for d in disputed] == [last] and disputed[0]["reason"] == "triple: ana chose 1; bo chose 2; cy chose 3"
    monkeypatch.setenv("S2_AUTHOR", "rev")
    resolved = json.loads(cli.ok("queue", "resolve", "digits", last, "2", "--json"))
    assert resolved["source"] == "resolved by rev from triple: ana chose 1; bo chose 2; cy chose 3"
    assert "is not in the triple queue" in cli.fails("queue", "vote", "digits", keys[0], "1", "-Q", "triple")  # settled: out of the queue
    assert "label 'x' is not in the label set" in cli.fails("queue", "vote", "digits", keys[0], "x", "-Q", "triple")

    stats = json.loads(cli.ok("queue", "agreement", "digits", "-Q", "triple", "--json"))
    assert stats["items"] == 5 and stats["per_labeler"] == {"ana": 1.0, "bo": 1.0, "cy": 0.0}
    assert -1 <= stats["krippendorff_alpha"] < 0.8 and stats["fleiss_raters"] == 3
    assert {(c["a"], c["b"]) for c in stats["cohen_kappa"]} == {("ana", "bo"), ("ana", "cy"), ("bo", "cy")}
    cli.ok("commit", "digits", "-b", "work", "-m", "consensus")
    blame = json.loads(cli.ok("blame", "digits", keys[0], "--rev", "work", "--json"))
    assert blame[-1]["source"].startswith("consensus in queue triple: ana, bo chose") and blame[-1]["author"] == "cy"
