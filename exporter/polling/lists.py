"""One list poll of a target, as its kind declares it: the list's path and body, its record
parser, its paging, and what of the answer is kept (``kept.py``), page by page.

A kind that not every supported server serves (``Endpoints.served_since``: snapshot restores,
Milvus 3.0 and later) and whose list answers HTTP 404 fails with the reason ``not_served`` and
one line that says so, instead of a bare ``http_404``.
"""

from __future__ import annotations

from typing import Any

from ..kinds import AnyKind
from ..upstream.client import ApiError, MilvusClient, job_list_body
from ..upstream.listing import KnownPages, Listing
from .kept import KeepLimits, Kept, ListingKeeper
from .oddities import OddityLog
from .reuse import ParsedRecords, RecordReuse
from .targets import Target


def list_target(
    client: MilvusClient,
    target: Target,
    limits: KeepLimits,
    oddities: OddityLog,
    records: ParsedRecords | None = None,
) -> Kept[Any]:
    """Every page of the target's list, each noted for oddities (when its bytes are new) and
    folded into what is kept as it is read (``_Fold``); raises ``ApiError``.

    With ``records`` (``reuse.py``), what the target's last list read as is reused: a page
    whose bytes are unchanged gives its jobs again without being decoded, and when every page
    is, what was kept of them is given again whole (the same ``Kept``); a record unchanged
    gives back its job."""
    kind = target.job_kind
    if records is None:
        reuse, known = None, None
    else:
        reuse, known = records.reader(target.key, kind.parse), records.pages(target.key)
    fold = _Fold(ListingKeeper(limits, kind), target, oddities, reuse, known)
    pages = client.list_pages(
        kind.endpoints.list,
        job_list_body(target.database),
        kind.parse if reuse is None else reuse,
        paged=kind.endpoints.paged,
        known=known,
        taker=fold,
    )
    try:
        for page in pages:
            fold.page_read(page)
            del page  # one page at a time
    except ApiError as error:
        raise not_served(kind, error) from None
    if records is None or reuse is None or known is None:
        return fold.keeper.result()
    last = records.last_kept(target.key)
    if known.all_seen and last is not None:
        kept = last
        reuse.reuse_all()
    else:
        fold.unchanged_pages()
        kept = fold.keeper.result()
        reuse.finish(kept.jobs)
    records.keep(target.key, reuse, known, kept)
    return kept


class _Fold:
    """Folds one list answer into its keeper as it is read. A page whose bytes are new and
    that the caps may cut is folded job by job as it is parsed (``take``), so a job they leave
    out is let go at once: a list of 500,000 imports of which 10,000 are kept held every job
    of the page being read, and of the pages before it. A page that fits is folded whole once
    read, and a page whose bytes are unchanged whole too, in listed order, and only once a new
    page comes (while every page is unchanged, what was kept of them last time is given)."""

    def __init__(
        self,
        keeper: ListingKeeper[Any],
        target: Target,
        oddities: OddityLog,
        reuse: RecordReuse[Any] | None,
        known: KnownPages | None,
    ) -> None:
        self.keeper = keeper
        self._target = target
        self._oddities = oddities
        self._reuse = reuse
        self._known = known
        self._unchanged: list[Listing[Any]] = []
        """Pages whose bytes are those of last time, not folded in yet."""
        self._taken_whole = True
        """The page being read is folded in whole once read, not job by job."""

    def fits(self, count: int) -> bool:
        """A new page of ``count`` records is read: job by job only when the caps may cut it
        (at 50 databases no page is: one call less for each of 50,000 records a round)."""
        self.unchanged_pages()  # listed before it
        self._taken_whole = self.keeper.has_room(count)
        return self._taken_whole

    def take(self, job: Any) -> bool:
        """A job of a new page the caps may cut, as it is read; whether its page's listing
        must hold it too (only while the pages are remembered for the next list: nothing
        left out so far)."""
        if job.progress_out_of_range or not job.known_state:
            self._oddities.note_job(self._target, job)
        keeper = self.keeper
        reuse = self._reuse
        if reuse is not None:
            reuse.fresh.clear()  # noted here, job by job: a page of them is not held for it
            if not keeper.take(job):
                reuse.let_go(job)
        else:
            keeper.take(job)
        return self._pages_held()

    def page_read(self, page: Listing[Any]) -> None:
        if self._known is not None and self._known.pages[-1].hit:
            self._unchanged.append(page)  # its oddities were noted when its bytes were new
            return
        self.unchanged_pages()  # a page without a job read
        if self._taken_whole:
            if self._reuse is None:
                self._oddities.note(self._target, page)
            else:  # what a job given back could say was said when it was read
                self._oddities.note_skipped(self._target, page.skipped)
                for job in self._reuse.fresh:
                    self._oddities.note_job(self._target, job)
            self.keeper.add(page)
        else:
            self._oddities.note_skipped(self._target, page.skipped)
            self.keeper.add_skipped(page.skipped)
            self.keeper.end_page()
        self._taken_whole = True
        if self._reuse is not None:
            self._reuse.settle_page(self.keeper.holds)
        self._pages_held()

    def _pages_held(self) -> bool:
        """Whether the pages read so far are held for the next list: only until the caps
        leave something out (or a record is skipped), since such a list is not remembered."""
        known = self._known
        if known is None or known.forgotten:
            return False
        if self.keeper.leaves_out:
            known.forget()
            return False
        return True

    def unchanged_pages(self) -> None:
        """Fold in the unchanged pages waiting, in the order listed."""
        for page in self._unchanged:
            self.keeper.add(page)
            if self._reuse is not None:
                self._reuse.carry(page.jobs, self.keeper.holds)
        self._unchanged = []


def not_served(kind: AnyKind, error: ApiError) -> ApiError:
    """A kind that not every server serves, whose list answers HTTP 404: the reason
    ``not_served``, said in one line. Any other failure as it is."""
    served_since = kind.endpoints.served_since
    if error.reason != "http_404" or not served_since:
        return error
    return ApiError(
        "not_served",
        f"this server does not serve {kind.endpoints.list} (HTTP 404): {kind.plural} need "
        f"{served_since} or later; leave {kind.name} out of this cluster's jobs",
    )
