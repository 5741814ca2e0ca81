"""The items of a JSON array read as its bytes arrive: a whole export is never held, only a chunk and one item.

Label Studio's JSON exports are one array of task objects; a pull reads it as a stream, a page of tasks at a time.
"""

import codecs
import json
from collections.abc import Iterable, Iterator

MAX_ITEM_CHARS = 64 * 1024 * 1024  # an unfinished item longer than this is not a task: refuse it, do not keep reading


def array_items(chunks: Iterable[bytes], what: str = "the JSON body") -> Iterator[object]:
    """Each item of the top-level JSON array spread over chunks, in order; ValueError naming `what` if it is not one."""
    decoder, text = json.JSONDecoder(), codecs.getincrementaldecoder("utf-8")()
    buf, pos, opened, closed = "", 0, False, False
    for chunk in chunks:
        buf = buf[pos:] + text.decode(chunk)
        pos = 0
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos == len(buf):
                break
            if closed:
                raise ValueError(f"{what}: text after the end of the array at character {pos}")
            if not opened:
                if buf[pos] != "[":
                    raise ValueError(f"{what}: expected a JSON array, found {buf[pos : pos + 20]!r}")
                opened, pos = True, pos + 1
                continue
            if buf[pos] == "]":
                closed, pos = True, pos + 1
                continue
            if buf[pos] == ",":
                pos += 1
                continue
            try:
                item, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError:
                if len(buf) - pos > MAX_ITEM_CHARS:
                    raise ValueError(f"{what}: an item runs past {MAX_ITEM_CHARS:,} characters") from None
                break  # the item is not complete yet: wait for the next chunk
            if end == len(buf) and isinstance(item, int | float):
                break  # a number at the chunk's end may go on in the next one
            pos = end
            yield item
    buf = buf[pos:] + text.decode(b"", final=True)
    if buf.strip() or not closed:
        raise ValueError(f"{what}: the array ends early" if opened else f"{what}: empty, not a JSON array")
