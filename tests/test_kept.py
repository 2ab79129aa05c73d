"""What of a list answer is kept: everything under the caps; over them, what the alerts need."""

from __future__ import annotations

from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.kinds.imports import IMPORT
from exporter.kinds.refresh import REFRESH
from exporter.polling.kept import KeepLimits, ListingKeeper, keep_listed
from exporter.polling.lists import _Fold, list_target
from exporter.polling.oddities import OddityLog
from exporter.polling.reuse import ParsedRecords
from exporter.upstream.client import Listing, MilvusClient
from exporter.upstream.listing import listing_of
from exporter.upstream.records import ImportJob, RefreshJob

from .helpers import REFRESH as REFRESH_TARGET
from .helpers import T0, import_job, refresh_job

WIDE = KeepLimits(jobs=1_000, collections=1_000)


def ids(jobs: tuple[RefreshJob, ...] | tuple[ImportJob, ...]) -> list[str]:
    return [str(job.job_id) for job in jobs]


def refresh(job_id: int, state: str, collection: str, start: float) -> RefreshJob:
    end = start + 10 if state in ("RefreshCompleted", "RefreshFailed") else None
    return refresh_job(job_id, state, collection, start=start, end=end)


def test_under_the_caps_everything_is_kept_as_listed_with_exact_counts():
    jobs = (
        refresh(3, "RefreshInProgress", "a", T0),
        refresh(2, "RefreshCompleted", "a", T0 - 100),
        refresh(1, "RefreshCompleted", "a", T0 - 200),
        refresh(9, "RefreshFailed", "b", T0 - 50),
    )
    kept = keep_listed(WIDE, REFRESH, [Listing(jobs)])
    assert kept.jobs == jobs
    assert kept.counts == {
        "a": {"RefreshInProgress": 1, "RefreshCompleted": 2},
        "b": {"RefreshFailed": 1},
    }
    assert kept.unkept == {"max_listed_jobs": 0, "max_listed_collections": 0}


def test_a_record_listed_twice_counts_once():
    job = import_job("7", "Importing", "books")
    kept = keep_listed(WIDE, IMPORT, [Listing((job,)), Listing((job,))])
    assert kept.jobs == (job,)
    assert kept.counts == {"books": {"Importing": 1}}


def test_over_the_job_cap_unfinished_then_newest_failures_then_newest_successes_are_kept():
    jobs = (
        refresh(1, "RefreshCompleted", "old_success", T0 - 900),
        refresh(2, "RefreshFailed", "old_failure", T0 - 800),
        refresh(3, "RefreshCompleted", "recent_success", T0 - 10),
        refresh(4, "RefreshInProgress", "running", T0 - 5000),
        refresh(5, "RefreshCompleted", "old_success", T0 - 2000),  # older than job 1
    )
    kept = keep_listed(KeepLimits(jobs=3, collections=100), REFRESH, [Listing(jobs)])
    # the running job, then the only newest failure, then the newest of the newest successes
    assert sorted(ids(kept.jobs)) == ["2", "3", "4"]
    assert kept.unkept["max_listed_jobs"] == 2
    assert kept.counts["old_success"] == {"RefreshCompleted": 2}  # counts cover unkept jobs


def test_an_older_failure_is_never_kept_without_the_newer_success_that_resolves_it():
    """Kept alone, the failure would pass for the collection's newest finished job and page."""
    jobs = (
        refresh(1, "RefreshCompleted", "books", T0 - 10),  # newest: resolves the failure
        refresh(2, "RefreshFailed", "books", T0 - 500),
        refresh(3, "RefreshInProgress", "other", T0),
        refresh(4, "RefreshInProgress", "more", T0),
    )
    kept = keep_listed(KeepLimits(jobs=3, collections=100), REFRESH, [Listing(jobs)])
    assert sorted(ids(kept.jobs)) == ["1", "3", "4"]

    two = keep_listed(KeepLimits(jobs=2, collections=100), REFRESH, [Listing(jobs)])
    assert sorted(ids(two.jobs)) == ["3", "4"]  # neither finished job of books: not one alone


def test_a_newest_job_trimmed_on_an_earlier_page_is_not_replaced_by_an_older_one():
    keeper = ListingKeeper(KeepLimits(jobs=1, collections=100), IMPORT)
    keeper.add(Listing((import_job("500", "Importing", "a"), import_job("90", "Completed", "b"))))
    keeper.add(Listing((import_job("10", "Failed", "b"),)))  # older than the trimmed success
    kept = keeper.result()
    assert ids(kept.jobs) == ["500"]
    assert kept.counts["b"] == {"Completed": 1, "Failed": 1}


def test_collections_past_the_cap_are_left_out_whole_and_counted():
    jobs = tuple(import_job(str(index), "Importing", f"c{index % 5}") for index in range(20))
    kept = keep_listed(KeepLimits(jobs=1_000, collections=2), IMPORT, [Listing(jobs)])
    assert set(kept.counts) == {"c0", "c1"}
    assert kept.counts["c0"] == {"Importing": 4}
    assert {job.collection for job in kept.jobs} == {"c0", "c1"}
    assert kept.unkept == {"max_listed_jobs": 0, "max_listed_collections": 12}


def test_a_long_list_is_held_to_twice_the_cap_while_it_is_read():
    keeper = ListingKeeper(KeepLimits(jobs=10, collections=1_000), IMPORT)
    page = tuple(import_job(str(index), "Importing", f"c{index}") for index in range(500))
    held = []
    for job in page:
        keeper.add(Listing((job,)))
        held.append(keeper.held)
    assert max(held) <= 20
    kept = keeper.result()
    assert sorted(ids(kept.jobs)) == [str(index) for index in range(490, 500)]  # the newest ten
    assert kept.unkept["max_listed_jobs"] == 490


class _EagerKeeper(ListingKeeper[RefreshJob]):
    """Follows each collection's newest finished jobs from the first job on: how the keeper
    worked before it learned to find them only when a cap needs them."""

    def __init__(self, limits: KeepLimits) -> None:
        super().__init__(limits, REFRESH)
        self._newest_known = True


PAGES = st.lists(
    st.lists(
        st.tuples(
            st.integers(1, 40),  # job id: repeats are records listed twice
            st.sampled_from(["a", "b", "c", "d", "e"]),
            st.sampled_from(
                ["RefreshCompleted", "RefreshFailed", "RefreshInProgress", "RefreshPending"]
            ),
            st.integers(0, 5),  # start: ties between jobs of one collection
        ),
        max_size=30,
    ),
    min_size=1,
    max_size=4,
)
"""Pages of refresh jobs: (job id, collection, state, start)."""


@settings(max_examples=300, deadline=None)
@given(
    pages=PAGES,
    jobs_cap=st.integers(1, 40),
    collections_cap=st.integers(1, 6),
)
def test_finding_the_newest_only_when_a_cap_needs_them_keeps_the_same(
    pages: list[list[tuple[int, str, str, int]]], jobs_cap: int, collections_cap: int
) -> None:
    limits = KeepLimits(jobs=jobs_cap, collections=collections_cap)
    lazy: ListingKeeper[RefreshJob] = ListingKeeper(limits, REFRESH)
    eager = _EagerKeeper(limits)
    for page in pages:
        listing = Listing(
            tuple(refresh(job_id, state, name, T0 + start) for job_id, name, state, start in page)
        )
        lazy.add(listing)
        eager.add(listing)
    assert lazy.result() == eager.result()


@given(
    pages=PAGES,
    jobs_cap=st.integers(1, 40),
    collections_cap=st.integers(1, 6),
)
def test_folding_job_by_job_as_a_page_is_read_keeps_what_folding_it_whole_keeps(
    pages: list[list[tuple[int, str, str, int]]], jobs_cap: int, collections_cap: int
) -> None:
    """``lists._Fold`` takes each job of a page the caps may cut as it is parsed (and lets go
    at once what they leave out), a page that fits whole: the same as whole pages."""
    limits = KeepLimits(jobs=jobs_cap, collections=collections_cap)
    listings = [
        Listing(
            tuple(refresh(job_id, state, name, T0 + start) for job_id, name, state, start in page)
        )
        for page in pages
    ]
    fold = _Fold(ListingKeeper(limits, REFRESH), REFRESH_TARGET, OddityLog(), None, None)
    for listing in listings:
        fold.page_read(listing_of(list(listing.jobs), lambda job: job, taker=fold))
    assert fold.keeper.result() == keep_listed(limits, REFRESH, listings)


class _PagesClient:
    """Serves ``list_pages`` as ``MilvusClient`` does for the pages given: a page whose
    records are those of the same page last time is given again as it was read
    (``KnownPages``), a new one is read record by record and handed to the taker."""

    def __init__(self, pages: list[list[dict[str, object]]]) -> None:
        self._pages = pages

    def list_pages(self, api, body, parse, *, paged=False, known=None, taker=None):
        for records in self._pages:
            if known is not None and known.arrived(repr(records).encode()):
                yield known.pages[-1].read
                continue
            listing = listing_of(list(records), parse, T0 + 60, {}, taker=taker)
            yield listing if known is None else known.read_as(listing)


def record(job_id: int, name: str, state: str, start: int) -> dict[str, object]:
    finished = state in ("RefreshCompleted", "RefreshFailed")
    return {
        "jobId": job_id,
        "collectionName": name,
        "state": state,
        "progress": 100 if finished else 10,
        "startTime": int((T0 + start) * 1000),
        **({"endTime": int((T0 + start + 10) * 1000)} if finished else {}),
    }


def records_of(names: str, most: int) -> st.SearchStrategy[list[dict[str, object]]]:
    return st.lists(
        st.builds(
            record,
            st.integers(1, 40),
            st.sampled_from(list(names)),
            st.sampled_from(["RefreshCompleted", "RefreshFailed", "RefreshInProgress"]),
            st.integers(0, 5),
        ),
        max_size=most,
    )


@settings(max_examples=200, deadline=None)
@given(
    first=st.lists(records_of("abc", 8), min_size=1, max_size=3),
    changes=st.lists(st.one_of(st.none(), records_of("abcdefgh", 25)), min_size=1, max_size=5),
    jobs_cap=st.integers(1, 30),
    collections_cap=st.integers(2, 6),
)
def test_a_list_read_again_keeps_what_reading_it_afresh_keeps(
    first: list[list[dict[str, object]]],
    changes: list[list[dict[str, object]] | None],
    jobs_cap: int,
    collections_cap: int,
) -> None:
    """A list read twice (``lists.list_target``), the second time with some pages the same
    (``None``: the first list's page) and some new, under caps that may cut either: what is
    kept the second time is what a fresh reading of its pages keeps, whichever pages were
    taken job by job, whole, or given again unread."""
    second = [
        page if page is not None else first[index % len(first)]
        for index, page in enumerate(changes)
    ]
    limits = KeepLimits(jobs=jobs_cap, collections=collections_cap)
    records = ParsedRecords(limits)
    oddities = OddityLog()
    for pages in (first, second):
        client = cast(MilvusClient, _PagesClient(pages))
        kept = list_target(client, REFRESH_TARGET, limits, oddities, records)
        parsed = [listing_of(list(page), REFRESH.parse, T0 + 60, {}) for page in pages]
        assert kept == keep_listed(limits, REFRESH, parsed)
