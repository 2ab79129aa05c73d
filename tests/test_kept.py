"""What of a list answer is kept: everything under the caps; over them, what the alerts need."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.kinds.imports import IMPORT
from exporter.kinds.refresh import REFRESH
from exporter.polling.kept import KeepLimits, ListingKeeper, keep_listed
from exporter.upstream.client import Listing
from exporter.upstream.records import ImportJob, RefreshJob

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


@settings(max_examples=300, deadline=None)
@given(
    pages=st.lists(
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
    ),
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
