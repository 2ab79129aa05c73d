"""milvus-jobs-exporter: Prometheus metrics for Milvus / Zilliz Cloud refresh and import jobs."""

__version__ = "0.1.0"
