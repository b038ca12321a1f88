"""Schemathesis hooks for the mobile BFF's OpenAPI document.

`GET /v2/orders?cursor=` takes only cursors this API issued (`format: opaque-cursor`): a
cursor is signed and tied to the `status` filter it was issued for, so a generated string
is rightly a 400. Where a generated request carries a cursor-shaped string, this hook puts
in its place a cursor the BFF issued for the same filter (or drops it when that filter has
a single page), so the fuzzer tests what a client can actually send. Strings over the
documented 224 characters and non-strings are left alone: they are the invalid cases.

    SWITCHYARD_URL=http://127.0.0.1:8082 SWITCHYARD_TOKEN=$TOKEN \\
    SCHEMATHESIS_HOOKS=tests.schemathesis.hooks \\
    schemathesis run http://127.0.0.1:8082/openapi.json --checks all \\
        -H "Authorization: Bearer $TOKEN"
"""

import json
import os
import urllib.error
import urllib.parse
import urllib.request

import schemathesis

MAX_CURSOR_LENGTH = 224
_issued: dict = {}


def _issued_cursor(status):
    """The cursor of the first one-order page for `status` (None: no second page)."""
    if status not in _issued:
        query = {"limit": "1"}
        if status is not None:
            query["status"] = status
        request = urllib.request.Request(
            f"{os.environ['SWITCHYARD_URL']}/v2/orders?{urllib.parse.urlencode(query)}",
            headers={"Authorization": f"Bearer {os.environ['SWITCHYARD_TOKEN']}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            _issued[status] = json.load(response)["pagination"]["cursor"]
    return _issued[status]


# The coverage phase draws parameter values without running hooks, pairing each with the
# first value of the others (`status=pending`): it gets a cursor issued for that filter.
if os.environ.get("SWITCHYARD_URL") and os.environ.get("SWITCHYARD_TOKEN"):
    from hypothesis import strategies as st

    try:
        _pending = _issued_cursor("pending")
    except (urllib.error.URLError, KeyError, ValueError):
        _pending = None
    if _pending is not None:
        schemathesis.openapi.format("opaque-cursor", st.just(_pending))


@schemathesis.hook
def map_query(context, query):
    operation = context.operation
    if operation is None or operation.path != "/v2/orders" or not isinstance(query, dict):
        return query
    cursor = query.get("cursor")
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH:
        return query
    status = query.get("status")
    try:
        issued = _issued_cursor(status if isinstance(status, str) else None)
    except (urllib.error.URLError, KeyError, ValueError):
        # An invalid filter: the request is refused for it, whatever the cursor.
        return query
    if issued is None:
        query.pop("cursor")
    else:
        query["cursor"] = issued
    return query
