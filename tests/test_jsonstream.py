"""labeling.labelstudio.jsonstream: a JSON array's items as its bytes arrive, however the bytes are cut."""

import json
import random

import pytest

from labeling.labelstudio.jsonstream import array_items

TASKS = [
    {"id": i, "data": {"text": f'naïve café {i} \u2603 "quoted" [brackets] {{braces}}', "s2_key": f"k{i}"}, "annotations": []}
    for i in range(50)
] + [12345, "a string, with a comma", None, True, [1, [2, 3]], -0.5e3]


def cut(body: bytes, seed: int) -> list[bytes]:
    rng, chunks, i = random.Random(seed), [], 0
    while i < len(body):
        n = rng.randint(1, 40)
        chunks.append(body[i : i + n])
        i += n
    return chunks


@pytest.mark.parametrize("seed", range(5))
def test_items_come_out_whole_whatever_the_chunking(seed):
    body = json.dumps(TASKS, indent=seed % 2 or None, ensure_ascii=False).encode()
    assert list(array_items(cut(body, seed))) == TASKS  # chunks cut inside strings, numbers and UTF-8 characters


def test_the_items_come_as_the_chunks_arrive_not_after_the_whole_body():
    body = json.dumps(TASKS).encode()
    read = []

    def chunks():
        for c in cut(body, 1):
            read.append(len(c))
            yield c

    items = array_items(chunks())
    assert next(items) == TASKS[0]
    assert sum(read) < len(body) / 10


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"detail": "not found"}', "expected a JSON array"),
        (b'[{"id": 1}, {"id": 2', "the array ends early"),
        (b"[1, 2] [3]", "text after the end of the array"),
        (b"", "empty, not a JSON array"),
    ],
)
def test_what_is_not_one_whole_array_is_an_error_naming_the_body(body, says):
    with pytest.raises(ValueError, match=f"the export of project 3: {says}"):
        list(array_items([body[:5], body[5:]], what="the export of project 3"))
