"""Credentials in URLs never shown: redact_url, redact_text and split_userinfo agree on the
userinfo, even when a password holds an unencoded '/', '?', '#', '@', ':' or '%'."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlrun_magic.redact import redact_text, redact_url, split_userinfo

URLS = ["http://alice:{pw}@127.0.0.1:9/", "https://alice:{pw}@127.0.0.1:9/r.git",
        "https://alice:{pw}@git.example.com/o/r.git#sub", "http://alice:{pw}@localhost:5000",
        "https://{pw}@github.com/o/r.git?x=1", "git+https://alice:{pw}@127.0.0.1:9/r.git",
        "http://alice:{pw}@[::1]:5000/api"]
PASSWORDS = st.text(alphabet=string.ascii_letters + string.digits + string.punctuation,
                    min_size=4, max_size=24) | st.sampled_from(["Pa55/WORDx", "SeKr/1tA",
                                                                "a#b?c@d/e", "x@h.com/y"])


@pytest.mark.parametrize("url,shown", [
    ("http://alice:Pa55/WORDx@127.0.0.1:9/", "http://127.0.0.1:9/"),
    ("http://alice:Pa55#WORDx@127.0.0.1:9/", "http://127.0.0.1:9/"),
    ("http://alice:Pa?55@127.0.0.1:9", "http://127.0.0.1:9"),
    ("https://alice:SeKr/1tA@127.0.0.1:9/r.git", "https://127.0.0.1:9/r.git"),
    ("http://u:p/q@mlflow:5000", "http://mlflow:5000"),
    ("http://u:p@host", "http://host"),
    # Not credentials: left exactly as given.
    ("http://host/x?mail=a@b", "http://host/x?mail=a@b"),
    ("file:///data/a@b/c", "file:///data/a@b/c"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),
])
def test_the_userinfo_runs_to_the_last_at_before_a_host(url, shown):
    assert redact_url(url) == shown
    assert redact_text(f"fatal: unable to access '{url}': boom") == \
        f"fatal: unable to access '{shown}': boom"


def test_split_userinfo_takes_out_the_whole_password():
    assert split_userinfo("http://alice:Pa55/WORDx@127.0.0.1:9/api") == (
        "http://127.0.0.1:9/api",
        {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "Pa55/WORDx"})
    assert split_userinfo("http://me:s%2Fx%40@host:5000")[1]["MLFLOW_TRACKING_PASSWORD"] == "s/x@"
    assert split_userinfo("postgresql://u:p/w@db/x") == ("postgresql://u:p/w@db/x", {})


@settings(max_examples=300, deadline=None)
@given(PASSWORDS, st.sampled_from(URLS))
def test_no_redacted_form_holds_the_password(password, template):
    url = template.format(pw=password)
    # A password that is part of the URL's own text (its host, say) would be there anyway.
    assume(password not in f"error at {template.format(pw='@')}: refused'")
    for shown in (redact_url(url), redact_text(f"error at {url}: refused"),
                  redact_text(f"'{url}'")):
        assert password not in shown, (url, shown)
    clean, env = split_userinfo(url)
    if url.startswith(("http://", "https://")):
        # The same userinfo becomes basic auth: nothing of it is left in the URI.
        assert clean == redact_url(url) and env
