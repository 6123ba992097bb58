"""URL paths built from ids: each id stays one path segment."""

from __future__ import annotations

from urllib.parse import quote

from yarl import URL


def append_segments(root: URL, *segments: str) -> URL:
    """`root` with `segments` appended, each quoted as one path segment.

    An id with "/" or "?" stays in its segment, and "." or ".." cannot climb.
    """
    quoted = [
        quote(segment, safe="") if segment not in (".", "..") else "%2E" * len(segment)
        for segment in segments
    ]
    path = "/".join([root.raw_path.rstrip("/"), *quoted])
    return root.with_path(path, encoded=True)
