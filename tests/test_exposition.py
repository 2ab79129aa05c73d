"""Rendering and the scrape cache: what Prometheus parsers read back."""

from __future__ import annotations

import gzip
import zlib

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.exposition.cache import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    ExpositionCache,
    render,
)
from exporter.exposition.families import HistogramState, MetricFamily, format_float


def sample_families() -> list[MetricFamily]:
    gauge = MetricFamily(
        "milvus_refresh_job_failure_info",
        "gauge",
        'Reason with "quotes" and \\ backslash\nand newline.',
    )
    gauge.add((("collection", 'ext "books"'), ("reason", "line one\nline two \\ end")), 1.0)
    counter = MetricFamily("milvus_jobs_exporter_poll_errors", "counter", "Failed polls.")
    counter.add((("reason", "timeout"),), 3.0, "_total")
    histogram = HistogramState((1.0, 10.0))
    histogram.observe(0.5)
    histogram.observe(5.0)
    histogram_family = MetricFamily("milvus_refresh_duration_seconds", "histogram", "Durations.")
    histogram_family.extend(histogram.samples((("state", "RefreshCompleted"),)))
    return [gauge, counter, histogram_family]


def test_text_rendering_round_trips_escaped_label_values_through_the_prometheus_parser():
    families = {family.name: family for family in parse_text(render(sample_families()))}
    sample = families["milvus_refresh_job_failure_info"].samples[0]
    assert sample.labels == {"collection": 'ext "books"', "reason": "line one\nline two \\ end"}
    assert (
        families["milvus_refresh_job_failure_info"].documentation
        == 'Reason with "quotes" and \\ backslash\nand newline.'
    )


def test_counter_is_typed_under_its_total_name_in_the_text_format():
    text = render(sample_families())
    assert "# TYPE milvus_jobs_exporter_poll_errors_total counter" in text
    assert 'milvus_jobs_exporter_poll_errors_total{reason="timeout"} 3.0' in text


def test_histogram_buckets_are_cumulative_and_end_with_inf():
    families = {family.name: family for family in parse_text(render(sample_families()))}
    buckets = {
        s.labels["le"]: s.value
        for s in families["milvus_refresh_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets == {"1.0": 1.0, "10.0": 2.0, "+Inf": 2.0}


def test_openmetrics_rendering_parses_with_the_strict_openmetrics_parser():
    cache = ExpositionCache()
    cache.publish(sample_families())
    scrape = cache.scrape(openmetrics=True)
    assert scrape.content_type == OPENMETRICS_CONTENT_TYPE
    assert scrape.body.endswith(b"# EOF\n")
    families = {family.name: family for family in parse_openmetrics(scrape.body.decode())}
    assert families["milvus_refresh_job_failure"].type == "info"
    assert (
        families["milvus_refresh_job_failure"].samples[0].name == "milvus_refresh_job_failure_info"
    )
    assert families["milvus_jobs_exporter_poll_errors"].samples[0].value == 3.0


def test_gzip_scrape_decodes_to_the_same_bytes_as_the_plain_scrape_including_the_live_tail():
    calls = []

    def live() -> bytes:
        calls.append(1)
        return b"# HELP process_open_fds Open fds.\n# TYPE process_open_fds gauge\nprocess_open_fds 7.0\n"

    cache = ExpositionCache(live_text=live)
    cache.publish(sample_families())
    plain = cache.scrape()
    compressed = cache.scrape(gzip=True)
    again = cache.scrape(gzip=True)
    assert plain.content_type == TEXT_CONTENT_TYPE
    assert compressed.gzipped
    assert gzip.decompress(compressed.body) == plain.body
    assert gzip.decompress(again.body) == plain.body
    assert plain.body.endswith(b"process_open_fds 7.0\n")
    assert len(calls) == 3


def test_publishing_a_new_cycle_replaces_every_cached_variant():
    cache = ExpositionCache()
    cache.publish(sample_families())
    cache.scrape(gzip=True)
    cache.scrape(openmetrics=True)
    newer = MetricFamily("milvus_jobs_exporter_untracked_jobs", "gauge", "Untracked.")
    newer.add((), 4.0)
    cache.publish([newer])
    for openmetrics in (False, True):
        body = gzip.decompress(cache.scrape(openmetrics=openmetrics, gzip=True).body)
        assert b"milvus_jobs_exporter_untracked_jobs 4.0" in body
        assert b"poll_errors" not in body


@pytest.mark.parametrize(
    ("number", "text"),
    [
        pytest.param(1.0, "1.0", id="integer"),
        pytest.param(0.42, "0.42", id="fraction"),
        pytest.param(float("inf"), "+Inf", id="inf"),
        pytest.param(1712832000.5, "1712832000.5", id="timestamp"),
        pytest.param(4.5e17, "4.5e+17", id="large"),
    ],
)
def test_floats_are_written_the_way_go_clients_write_them(number, text):
    assert format_float(number) == text


def _one_gzip_member(body: bytes) -> bytes:
    """The data of ``body``, which must be exactly one gzip member (what every client reads)."""
    decompressor = zlib.decompressobj(wbits=31)
    data = decompressor.decompress(body)
    assert decompressor.eof and decompressor.unused_data == b"", "not exactly one gzip member"
    return data


def test_a_new_cycle_compresses_only_the_families_whose_bytes_changed():
    """At fleet scale a tenth of the exposition changes from one cycle to the next (the
    running jobs' progress): only that is compressed again, and the answer is still one gzip
    member holding exactly the plain answer's bytes, in both formats, with the live tail."""

    def families(progress: float) -> list[MetricFamily]:
        still = MetricFamily("milvus_refresh_job_state", "gauge", "State.")
        for number in range(2000):
            still.add((("job_id", str(number)),), 1.0)
        moving = MetricFamily("milvus_import_job_progress_ratio", "gauge", "Progress.")
        for number in range(200):
            moving.add((("job_id", str(number)),), progress)
        return [still, moving]

    live = b"process_open_fds 7.0\n"
    cache = ExpositionCache(live_text=lambda: live, live_openmetrics=lambda: live)
    cache.publish(families(0.25))
    cache.prepare_gzip()
    first = cache.gzip_compressed_bytes
    cache.publish(families(0.5))
    cache.prepare_gzip()
    moved = cache.gzip_compressed_bytes
    assert 0 < moved < first / 5, (moved, first)
    for openmetrics in (False, True):
        for _ in range(2):
            plain = cache.scrape(openmetrics=openmetrics).body
            assert b'progress_ratio{job_id="7"} 0.5' in plain
            assert _one_gzip_member(cache.scrape(openmetrics=openmetrics, gzip=True).body) == plain
