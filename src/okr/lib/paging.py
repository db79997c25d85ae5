"""What a paged table shows under it: how many pages, and which rows of how many this page holds."""

import math
from collections.abc import Sized


class PageWindow:
    """Mixin for a page of rows: the class (a dataclass) has `rows`, `total`, `page` and `per_page`."""

    __slots__ = ()
    rows: Sized
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least 1)."""
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def first_index(self) -> int:
        """1-based position of the first row shown (0 when none)."""
        return (self.page - 1) * self.per_page + 1 if len(self.rows) else 0

    @property
    def last_index(self) -> int:
        """1-based position of the last row shown."""
        return (self.page - 1) * self.per_page + len(self.rows)
