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
from ..upstream.listing import Listing
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
    folded into what is kept before the next is read; raises ``ApiError``.

    With ``records`` (``reuse.py``), what the target's last list read as is reused: a page
    whose bytes are unchanged gives its jobs again without being decoded, and when every page
    is, what was kept of them is given again whole (the same ``Kept``); a record unchanged
    gives back its job."""
    kind = target.job_kind
    keeper: ListingKeeper[Any] = ListingKeeper(limits, kind)
    if records is None:
        reuse, known = None, None
    else:
        reuse, known = records.reader(target.key, kind.parse), records.pages(target.key)
    pages = client.list_pages(
        kind.endpoints.list,
        job_list_body(target.database),
        kind.parse if reuse is None else reuse,
        paged=kind.endpoints.paged,
        known=known,
    )
    seen: list[Listing[Any]] = []  # pages unchanged, not folded in while all of them are
    try:
        for page in pages:
            if known is not None and known.pages[-1].hit:
                seen.append(page)  # its oddities were noted when its bytes were new
                continue
            oddities.note(target, page)
            for earlier in seen:
                _fold(keeper, earlier, reuse, unchanged=True)
            seen = []
            _fold(keeper, page, reuse)
            del page  # one page at a time
    except ApiError as error:
        raise not_served(kind, error) from None
    if records is None or reuse is None or known is None:
        return keeper.result()
    last = records.last_kept(target.key)
    if known.all_seen and last is not None:
        kept = last
        reuse.reuse_all()
    else:
        for earlier in seen:
            _fold(keeper, earlier, reuse, unchanged=True)
        kept = keeper.result()
        reuse.finish(kept.jobs)
    records.keep(target.key, reuse, known, kept)
    return kept


def _fold(
    keeper: ListingKeeper[Any],
    page: Listing[Any],
    reuse: RecordReuse[Any] | None,
    unchanged: bool = False,
) -> None:
    keeper.add(page)
    if reuse is None:
        return
    if unchanged:
        reuse.carry(page.jobs, keeper.holds)
    else:
        reuse.settle_page(keeper.holds)


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
