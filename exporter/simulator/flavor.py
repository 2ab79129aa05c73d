"""What differs between the servers the simulator imitates, kept as data in one place.

Two flavours:

- ``zilliz`` follows the published Zilliz Cloud pages: every endpoint limited to 20 requests per
  second per user and answering HTTP 429, `externalSource` a JSON document, times in UTC, a JSON
  404 for unknown paths, and the paged control-plane import list when `import_paging` is on.
- ``milvus`` follows what a self-hosted Milvus server sends (read from its REST v2 handler and
  data coordinator): only the refresh trigger is limited and it answers HTTP 200 with code 1807,
  `externalSource` is any string (a URI such as ``s3://host/bucket/key/``), times are RFC 3339 in
  the server's own offset, import `details[]` name files as bracketed lists with task states,
  the database may come from a ``DB-Name`` header, the refresh list of a collection that is not
  external is an error, and unknown paths answer Go's plain-text ``404 page not found``.

What both share because the same server code computes it (import progress by state, failed
imports with no rows and no completion time, `reason` left out when empty, not-found codes, job
id types) is not here: it lives in the kinds (`kinds/`) and `fields.py`.

An option left at None takes the flavour's value; an option that is set wins:

    >>> rules_for(SimulatorOptions(flavor="milvus")).rate_limit_style
    'code_1807'
    >>> rules_for(SimulatorOptions(flavor="milvus", rate_limit_style="http_429")).rate_limit_style
    'http_429'
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .options import Flavor, RateLimitScope, RateLimitStyle, SimulatorOptions

MILVUS_OFFSET_MINUTES = 8 * 60  # the README's example server runs at +08:00


@dataclass(frozen=True)
class FlavorRules:
    """One flavour's behaviour, after the options' explicit overrides are applied.

    `json_external_source`: the refresh trigger wants `externalSource` / `externalSpec` to be JSON
    (and the invented world uses JSON sources); otherwise any non-empty string, and URIs.
    `milvus_file_details`: import `details[]` carry bracketed file names, task states and the
    job's reason on every failed file. `database_header`: a ``DB-Name`` header names the database
    when the body has no `dbName`. `refresh_list_needs_external`: listing the refreshes of a plain
    collection is an error rather than an empty list. `plain_text_not_found`: unknown paths get a
    text/plain ``404 page not found`` instead of a JSON envelope.
    """

    name: Flavor
    rate_limit_style: RateLimitStyle
    rate_limit_scope: RateLimitScope
    rate_limit_message: str
    utc_offset_minutes: int
    json_external_source: bool
    milvus_file_details: bool
    database_header: bool
    refresh_list_needs_external: bool
    plain_text_not_found: bool
    import_paging: bool = False
    success_code: int = 0

    def rate_limit_text(self, limit: int | None) -> str:
        """The message of a refused request: Zilliz names the limit; Milvus adds its limiter's
        own error after ", error: " (`request is rejected by limiter, error: rate limit
        exceeded[rate=2]`)."""
        if not limit:
            return self.rate_limit_message
        if self.name == "zilliz":
            return f"{self.rate_limit_message}[rate={limit}]"
        return f"{self.rate_limit_message}, error: rate limit exceeded[rate={limit}]"


ZILLIZ = FlavorRules(
    name="zilliz",
    rate_limit_style="http_429",
    rate_limit_scope="every_endpoint",
    rate_limit_message="rate limit exceeded",
    utc_offset_minutes=0,
    json_external_source=True,
    milvus_file_details=False,
    database_header=False,
    refresh_list_needs_external=False,
    plain_text_not_found=False,
)

MILVUS = FlavorRules(
    name="milvus",
    rate_limit_style="code_1807",
    rate_limit_scope="refresh_trigger",
    rate_limit_message="request is rejected by limiter",
    utc_offset_minutes=MILVUS_OFFSET_MINUTES,
    json_external_source=False,
    milvus_file_details=True,
    database_header=True,
    refresh_list_needs_external=True,
    plain_text_not_found=True,
)

FLAVOR_RULES: dict[Flavor, FlavorRules] = {"zilliz": ZILLIZ, "milvus": MILVUS}


def rules_for(options: SimulatorOptions) -> FlavorRules:
    """The flavour's rules with every explicitly set option laid over them."""
    base = FLAVOR_RULES[options.flavor]
    return replace(
        base,
        rate_limit_style=options.rate_limit_style or base.rate_limit_style,
        rate_limit_scope=options.rate_limit_scope or base.rate_limit_scope,
        utc_offset_minutes=(
            base.utc_offset_minutes
            if options.utc_offset_minutes is None
            else options.utc_offset_minutes
        ),
        import_paging=options.import_paging,
        success_code=200 if options.legacy_success_code else 0,
    )
