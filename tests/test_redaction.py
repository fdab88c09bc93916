"""Secrets are taken out of text before it reaches the learning queue: one case per pattern,
what must stay untouched, and properties (idempotent, never longer secrets left)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hivebrain.app.redaction import KINDS, redact, redact_text, redact_value

# Fake credentials in the shapes real ones have (none of them is valid anywhere).
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "-----END RSA PRIVATE KEY-----"
)
OPENSSH = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GH_CLASSIC = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
GH_FINE = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
OPENAI = "sk-proj-" + "Abc123Def456Ghi789Jkl012Mno345"
ANTHROPIC = "sk-ant-api03-" + "Xyz987Wvu654Tsr321Qpo098Nml765"
STRIPE = "sk_live_" + "51HqLyjWDarjtT1zdp7dcXyZ"
SLACK = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOp"
GOOGLE = "AIza" + "SyA1234567890abcdefghijklmnopqrstuv"
HF = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
GITLAB = "glpat-" + "xYz123AbC456dEf789gHi0"
BEARER = "Bearer 8f14e45fceea167a5a36dedd4bea2543"
BASIC = "Authorization: Basic dXNlcjpwYXNzd29yZA=="


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        (f"my key is\n{PEM}\nkeep it safe", PEM, "private-key"),
        (f"{OPENSSH}", "b3BlbnNzaC1rZXktdjEAAAAA", "private-key"),
        (
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0 (cut)",
            "MIIEvQIBADANBgkqhkiG9w0",
            "private-key",
        ),
        (f"token {JWT} expired", JWT, "jwt"),
        (f"export AWS_ACCESS_KEY_ID={AWS_ID}", AWS_ID, "aws-access-key"),
        (f"the id {AWS_ID} is old", AWS_ID, "aws-access-key"),
        (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "assignment"),
        (f"push with {GH_CLASSIC} please", GH_CLASSIC, "github-token"),
        (f"GH={GH_FINE}", GH_FINE, "github-token"),
        (f"openai {OPENAI}", OPENAI, "api-key"),
        (f"claude {ANTHROPIC}", ANTHROPIC, "api-key"),
        (f"stripe {STRIPE}", STRIPE, "api-key"),
        (f"slack {SLACK}", SLACK, "api-key"),
        (f"maps {GOOGLE}", GOOGLE, "api-key"),
        (f"hub {HF}", HF, "api-key"),
        (f"gitlab {GITLAB}", GITLAB, "api-key"),
        (
            f"curl -H 'Authorization: {BEARER}' http://x",
            "8f14e45fceea167a5a36dedd4bea2543",
            "bearer",
        ),
        (f"{BASIC}", "dXNlcjpwYXNzd29yZA==", "bearer"),
        ("nats://hub:s3cr3t-pa55@10.0.0.2:4222", "s3cr3t-pa55", "url-password"),
        ("postgres://app:hunter2@db/app", "hunter2", "url-password"),
        ("password=hunter2", "hunter2", "assignment"),
        ("the wifi password: correct-horse-battery", "correct-horse-battery", "assignment"),
        ('{"password": "two words"}', "two words", "assignment"),
        ("DB_PASSWORD='p@ss w0rd'", "p@ss w0rd", "assignment"),
        ("api_key: 12345abcde", "12345abcde", "assignment"),
        ("GITHUB_TOKEN=notaclassictoken", "notaclassictoken", "assignment"),
        ("client_secret => abc.def", "abc.def", "assignment"),
        ("login with pwd=letmein; then", "letmein", "assignment"),
        ("PGPASSWORD=hunter22 psql -h db", "hunter22", "assignment"),
        ('{"accessToken": "tok-123-xyz"}', "tok-123-xyz", "assignment"),
        ("SECRET_KEY_BASE=0a1b2c3d4e5f", "0a1b2c3d4e5f", "assignment"),
        ("curl -H 'Authorization: token 9f8e7d6c5b4a3f2e'", "9f8e7d6c5b4a3f2e", "bearer"),
    ],
)
def test_each_pattern_removes_its_secret(text: str, secret: str, kind: str) -> None:
    result = redact(text)
    assert secret not in result.text
    assert kind in result.kinds
    assert f"[REDACTED:{kind}]" in result.text


def test_what_names_the_secret_stays_readable() -> None:
    assert redact_text("password=hunter2 and more") == "password=[REDACTED:assignment] and more"
    assert redact_text('{"api_key": "x1"}') == '{"api_key": "[REDACTED:assignment]"}'
    assert redact_text(f"Authorization: {BEARER}") == "Authorization: Bearer [REDACTED:bearer]"
    assert redact_text(f"Bearer {JWT}") == "Bearer [REDACTED:jwt]"
    assert redact_text("nats://hub:pw123456@h:4222") == "nats://hub:[REDACTED:url-password]@h:4222"


@pytest.mark.parametrize(
    "text",
    [
        "the garage door sensor is on GPIO 17",
        "Bearer of bad news arrived at noon",
        "max_tokens: 512 and temperature 0.2",
        "the token count was high",
        "ssh into pi-garage as root and check the auth log",
        "Basic configuration of the router",
        "see https://example.org/path?q=1 for details",
        "oauth flow explained",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    result = redact(text)
    assert result.text == text and not result.changed


def test_several_secrets_in_one_text() -> None:
    text = f"aws {AWS_ID} gh {GH_CLASSIC} password=x9 {PEM}"
    result = redact(text)
    for secret in (AWS_ID, GH_CLASSIC, "x9", "MIIEowIBAAKCAQEAu1SU"):
        assert secret not in result.text
    assert set(result.kinds) == {"private-key", "aws-access-key", "github-token", "assignment"}
    assert set(result.kinds) <= set(KINDS)


def test_values_nested_in_json() -> None:
    value = {
        "query": f"deploy with {GH_CLASSIC}",
        "password": "plain-words",
        "nested": [{"token": 42}, "ok", None],
        "count": 3,
    }
    out = redact_value(value)
    assert out == {
        "query": "deploy with [REDACTED:github-token]",
        "password": "[REDACTED:assignment]",
        "nested": [{"token": "[REDACTED:assignment]"}, "ok", None],
        "count": 3,
    }


@given(st.text(max_size=300))
def test_redaction_is_idempotent(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once


@given(st.sampled_from([AWS_ID, GH_CLASSIC, OPENAI, JWT, STRIPE, SLACK]), st.text(max_size=80))
def test_a_known_secret_never_survives_any_surrounding_text(secret: str, around: str) -> None:
    assert secret not in redact_text(f"{around} {secret} {around}")
