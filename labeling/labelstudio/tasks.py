"""What travels between s2 and Label Studio: the labeling config, a task's data and pre-annotation, an annotation's choice.

Pure functions (no database, no network): the bridge builds tasks with them and reads annotations back.
"""

import json
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

FROM_NAME = "label"  # the Choices control every generated config has
TO_NAME = {"image": "image", "text": "text", "tabular": "features"}  # the object tag per modality
KEY_FIELD = "s2_key"  # the example's key, kept in task data: a push run again finds what it sent


def labeling_config(modality: str, labels: list[str]) -> str:
    """A Label Studio labeling config for a dataset: its input shown, one choice per label (single choice)."""
    if modality not in TO_NAME:
        raise ValueError(f"modality {modality!r}: Label Studio tasks are made for image, text and tabular datasets")
    if not labels:
        raise ValueError("the dataset has no label set: add labels before linking it to Label Studio")
    obj = {
        "image": '<Image name="image" value="$image" zoom="true"/>',
        "text": '<Text name="text" value="$text"/>',
        "tabular": '<Table name="features" value="$features"/>',
    }[modality]
    choices = "".join(f"<Choice value={quoteattr(label)}/>" for label in labels)
    return (
        f'<View>{obj}<Choices name="{FROM_NAME}" toName="{TO_NAME[modality]}" choice="single" showInline="true">{choices}</Choices></View>'
    )


def task_data(modality: str, key: str, dataset: str, *, media_url: str | None = None, inline: str | None = None) -> dict:
    """A task's data: the s2 key and dataset, and the input (an image's signed URL, a text, a row's features)."""
    data = {KEY_FIELD: key, "s2_dataset": dataset}
    if modality == "image":
        data["image"] = media_url
    elif modality == "text":
        data["text"] = inline if inline is not None else ""
    else:
        features = json.loads(inline) if inline else {}
        data["features"] = features if isinstance(features, dict) else {str(i): v for i, v in enumerate(features)}
    return data


def pre_annotation(modality: str, label: str, score: float, model: str) -> dict:
    """A Label Studio prediction naming the s2 model that made it (`model_version`) and its confidence."""
    return {
        "model_version": model,
        "score": round(float(score), 6),
        "result": [{"from_name": FROM_NAME, "to_name": TO_NAME[modality], "type": "choices", "value": {"choices": [label]}}],
    }


@dataclass(frozen=True)
class Annotation:
    """One annotation of a task, as s2 reads it."""

    id: int
    annotator: str  # the annotator's email (or "user N" when Label Studio did not say)
    choice: str | None  # the chosen label; None when the result holds no choice of ours
    cancelled: bool  # skipped (was_cancelled) in Label Studio: ignored
    updated: str  # Label Studio's update time: a changed annotation is taken again


def read_annotation(raw: dict, emails: dict[int, str]) -> Annotation:
    """An annotation dict from Label Studio's API (or a webhook) as an Annotation."""
    who = raw.get("completed_by")
    if isinstance(who, dict):
        annotator = who.get("email") or f"user {who.get('id')}"
    else:
        annotator = emails.get(who) or f"user {who}"
    choice = None
    for part in raw.get("result") or []:
        if part.get("from_name") == FROM_NAME and part.get("type") == "choices":
            picked = (part.get("value") or {}).get("choices") or []
            choice = picked[0] if picked else None
            break
    return Annotation(
        id=int(raw["id"]),
        annotator=annotator,
        choice=choice,
        cancelled=bool(raw.get("was_cancelled")),
        updated=_instant(raw.get("updated_at") or raw.get("created_at")),
    )


def _instant(value) -> str:  # noqa: ANN001
    """An update time as one canonical UTC string, whether the API gave a datetime or text (export vs task read)."""
    from datetime import UTC, datetime

    if value is None or value == "":
        return ""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def seen_mark(annotations: list[Annotation]) -> str:
    """What a task's annotations were when s2 took them: a pull finding the same mark skips the task."""
    return ",".join(f"{a.id}@{a.updated}" for a in sorted(annotations, key=lambda a: a.id))
