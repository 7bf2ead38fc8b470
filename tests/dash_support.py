"""Helpers for tests that talk to Dash's callback endpoint as a browser does."""
from __future__ import annotations


def callback_body(app, output_fragment: str, inputs: list, state: list) -> dict:
    """The body dash-renderer posts to ``/_dash-update-component`` for the callback whose
    output names ``output_fragment``, with these inputs (the first one changed) and states."""
    output = next(key for key in app.callback_map if output_fragment in key)
    outputs = [{"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1]} for part in output.strip(".").split("...")]
    # Dash sends a single output as an object, several as a list.
    return {"output": output, "outputs": outputs if output.startswith("..") else outputs[0], "inputs": inputs, "state": state,
            "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"]}


SITE = "http://localhost"  # the Flask test client's own origin


def same_site_client(app):
    """A test client that sends ``Origin`` with every request, as a browser does on a page of this
    site (state-changing requests without it are refused as cross-site)."""
    client = app.server.test_client()
    client.environ_base.update(HTTP_ORIGIN=SITE)
    return client
