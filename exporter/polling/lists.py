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
from .kept import KeepLimits, Kept, ListingKeeper
from .oddities import OddityLog
from .reuse import ParsedRecords
from .targets import Target


def list_target(
    client: MilvusClient,
    target: Target,
    limits: KeepLimits,
    oddities: OddityLog,
    records: ParsedRecords | None = None,
) -> Kept[Any]:
    """Every page of the target's list, each noted for oddities and folded into what is kept
    before the next is read; raises ``ApiError``. With ``records``, a record the target's last
    list already read gives back that list's job (``reuse.py``)."""
    kind = target.job_kind
    keeper: ListingKeeper[Any] = ListingKeeper(limits, kind)
    reuse = None if records is None else records.reader(target.key, kind.parse)
    pages = client.list_pages(
        kind.endpoints.list,
        job_list_body(target.database),
        kind.parse if reuse is None else reuse,
        paged=kind.endpoints.paged,
    )
    try:
        for page in pages:
            oddities.note(target, page)
            keeper.add(page)
            del page  # one page at a time
            if reuse is not None:
                reuse.settle_page(keeper.holds)
    except ApiError as error:
        raise not_served(kind, error) from None
    kept = keeper.result()
    if records is not None and reuse is not None:
        reuse.finish(kept.jobs)
        records.keep(target.key, reuse)
    return kept


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
