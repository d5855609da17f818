"""DNS-1123 name checks: the only gate between a trigger's input and a PromQL label matcher."""

from __future__ import annotations

import pytest

from pod_rebalancer.core.model import Target
from pod_rebalancer.core.names import label_problem, subdomain_problem

INJECTION = 'x"} or vector(1) #'

VALID_LABELS = ["a", "0", "posthog", "ingestion-consumer", "a-b-c", "9lives", "a" * 63, "a--b"]
VALID_SUBDOMAINS = [
    *VALID_LABELS,
    "ingestion.consumer",
    "a.b.c",
    "v1.2-3",
    "a" * 253,
    ".".join(["a" * 63] * 4)[:253].rstrip("."),
]

# Rejected by both checks.
INVALID_NAMES = [
    pytest.param("", id="empty"),
    pytest.param("Posthog", id="uppercase"),
    pytest.param("POSTHOG", id="all_uppercase"),
    pytest.param("-posthog", id="leading_dash"),
    pytest.param("posthog-", id="trailing_dash"),
    pytest.param("post_hog", id="underscore"),
    pytest.param('post"hog', id="double_quote"),
    pytest.param("post'hog", id="single_quote"),
    pytest.param("post hog", id="space"),
    pytest.param("post\\hog", id="backslash"),
    pytest.param("post{hog}", id="braces"),
    pytest.param("posthog\n", id="trailing_newline"),
    pytest.param(INJECTION, id="promql_injection"),
    pytest.param("posthög", id="unicode_letter"),
    pytest.param("\uff50osthog", id="fullwidth_letter"),
    pytest.param("post\u0661hog", id="arabic_indic_digit"),
    pytest.param("post\u200bhog", id="zero_width_space"),
]


@pytest.mark.parametrize("name", VALID_LABELS)
def test_label_accepts_dns1123_labels(name: str) -> None:
    assert label_problem(name) is None


@pytest.mark.parametrize("name", VALID_SUBDOMAINS)
def test_subdomain_accepts_dns1123_subdomains(name: str) -> None:
    assert subdomain_problem(name) is None


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_label_rejects_invalid_names(name: str) -> None:
    assert label_problem(name)


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_subdomain_rejects_invalid_names(name: str) -> None:
    assert subdomain_problem(name)


@pytest.mark.parametrize("name", ["a.b", "ingestion.consumer", ".a", "a."])
def test_label_rejects_dots(name: str) -> None:
    assert label_problem(name)


@pytest.mark.parametrize("name", [".a", "a.", "a..b", "a.-b", "a-.b"])
def test_subdomain_rejects_misplaced_dots(name: str) -> None:
    assert subdomain_problem(name)


def test_label_rejects_names_longer_than_63_characters() -> None:
    assert label_problem("a" * 64) == "must be no more than 63 characters"


def test_subdomain_rejects_names_longer_than_253_characters() -> None:
    assert subdomain_problem("a" * 254) == "must be no more than 253 characters"


def test_empty_name_says_so() -> None:
    assert label_problem("") == "must not be empty"
    assert subdomain_problem("") == "must not be empty"


def test_target_accepts_valid_names() -> None:
    target = Target("posthog", "ingestion.consumer-v2")

    assert str(target) == "posthog/ingestion.consumer-v2"


@pytest.mark.parametrize("name", [*INVALID_NAMES, pytest.param("a" * 64, id="too_long")])
def test_target_refuses_an_invalid_namespace(name: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        Target(name, "ingestion-consumer")


@pytest.mark.parametrize("name", [*INVALID_NAMES, pytest.param("a" * 254, id="too_long")])
def test_target_refuses_an_invalid_deployment(name: str) -> None:
    with pytest.raises(ValueError, match="deployment"):
        Target("posthog", name)


def test_target_refuses_a_dotted_namespace() -> None:
    with pytest.raises(ValueError, match="namespace"):
        Target("post.hog", "ingestion-consumer")
