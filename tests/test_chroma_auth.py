"""A secured Chroma server: a token (from the environment, never logged), a tenant, a database.

``chroma run`` (Chroma 1.x's Rust server) has no server-side authentication, so the token is
tested against chromadb's own Python server (``chromadb.app`` under uvicorn) with chromadb's
token authentication switched on: the same HTTP API, and the same client path policy-qa takes
to Chroma Cloud or to a ``chroma run`` behind a token-checking proxy. That server fails a
``get`` that includes vectors (chromadb 1.5.9), so questions are asked of ``chroma run``, with a
tenant and a database of its own (docs/decisions/092-chroma-server-auth.md).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from policy_qa import (
    Assistant,
    ConfigError,
    IndexNotFoundError,
    Settings,
    StoreUnavailableError,
)

from .servers import serving
from .tiny import hash_models, write_corpus

pytestmark = [pytest.mark.slow, pytest.mark.server]

TOKEN = "pqa-test-token-7f3a9c"
TENANT, DATABASE = "policy-team", "policies"
SOURCES = ["cluster.txt", "parks.md", "water.txt"]
TOKEN_SERVER = "chromadb.auth.token_authn.TokenAuthenticationServerProvider"
TOKEN_CLIENT = "chromadb.auth.token_authn.TokenAuthClientProvider"


def make_tenant_and_database(url: str, token: str | None = None) -> None:
    auth: dict[str, Any] = {
        "chroma_client_auth_provider": TOKEN_CLIENT,
        "chroma_client_auth_credentials": token,
    }
    admin = chromadb.AdminClient(
        ChromaSettings(
            chroma_api_impl="chromadb.api.fastapi.FastAPI",
            chroma_server_host="127.0.0.1",
            chroma_server_http_port=int(url.rsplit(":", 1)[1]),
            anonymized_telemetry=False,
            **(auth if token else {}),
        )
    )
    admin.create_tenant(TENANT)
    admin.create_database(DATABASE, tenant=TENANT)


@pytest.fixture(scope="module")
def secured_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """chromadb's Python server with token authentication on."""
    data = tmp_path_factory.mktemp("chroma-token")
    command = [sys.executable, "-m", "uvicorn", "chromadb.app:app"]
    env = {
        "CHROMA_SERVER_AUTHN_PROVIDER": TOKEN_SERVER,
        "CHROMA_SERVER_AUTHN_CREDENTIALS": TOKEN,
        "IS_PERSISTENT": "TRUE",
        "PERSIST_DIRECTORY": str(data),
    }
    with serving(command, data / "server.log", **env) as url:
        make_tenant_and_database(url, TOKEN)
        yield url


@pytest.fixture(scope="module")
def chroma_run_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("chroma-run")
    chroma = Path(sys.executable).with_name("chroma")
    with serving([str(chroma), "run", "--path", str(data / "db")], data / "server.log") as url:
        make_tenant_and_database(url)
        yield url


def assistant(folder: Path, **settings: str | None) -> Assistant:
    config = Settings(data_dir=folder, judge="off", **settings)  # type: ignore[arg-type]
    return Assistant(settings=config, embeddings=hash_models())


def test_the_token_from_the_environment_opens_a_secured_server(
    secured_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_corpus(tmp_path / "docs")
    env = {
        "POLICY_QA_CHROMA_URL": secured_url,
        "POLICY_QA_CHROMA_TOKEN": TOKEN,
        "POLICY_QA_CHROMA_TENANT": TENANT,
        "POLICY_QA_CHROMA_DATABASE": DATABASE,
        "POLICY_QA_DATA_DIR": str(tmp_path / "data"),
        "POLICY_QA_JUDGE": "off",
    }
    settings = Settings.from_env(env)
    assert (settings.chroma_token, settings.chroma_tenant) == (TOKEN, TENANT)
    assert TOKEN not in repr(settings)
    caplog.set_level(logging.DEBUG)  # every library's logging, at its most verbose
    with Assistant(settings=settings, embeddings=hash_models()) as qa:
        assert sorted(qa.index([tmp_path / "docs"]).added) == SOURCES
        assert [d.source for d in qa.documents()] == SOURCES
    assert "/tenants/policy-team/databases/policies/" in caplog.text  # httpx's request lines
    assert TOKEN not in caplog.text
    # The documents went to that tenant's database: the server's default one has none.
    default = assistant(tmp_path / "data", chroma_url=secured_url, chroma_token=TOKEN)
    assert default.documents() == []


def test_tenant_and_database_on_chroma_run(chroma_run_url: str, tmp_path: Path) -> None:
    write_corpus(tmp_path / "docs")
    where = {"chroma_url": chroma_run_url, "chroma_tenant": TENANT, "chroma_database": DATABASE}
    with assistant(tmp_path / "writer", **where) as writer:
        assert sorted(writer.index([tmp_path / "docs"]).added) == SOURCES
    # Another client, sharing nothing but the server, reads and answers from that database.
    with assistant(tmp_path / "reader", **where) as reader:
        answer = reader.ask("How many members does the Water Board have?")
        assert answer.citations and answer.citations[0].source == "water.txt"
        assert "nine members" in answer.citations[0].quote
    # The default database of the same server, from the writer's own data folder: empty, and
    # once written to, its BM25 cache is a folder of its own beside the tenant's.
    with assistant(tmp_path / "writer", chroma_url=chroma_run_url) as default:
        assert default.documents() == []
        with pytest.raises(IndexNotFoundError, match="empty"):
            default.ask("How many members does the Water Board have?")
        (tmp_path / "notes").mkdir()
        (tmp_path / "notes" / "notes.txt").write_text("Notes\n\nThe library opens at nine.\n")
        default.index([tmp_path / "notes"])
        assert [d.source for d in default.documents()] == ["notes.txt"]
    caches = sorted(p.name for p in (tmp_path / "writer" / "lexical").iterdir())
    assert len(caches) == 2 and any("policy_team_policies" in name for name in caches)


@pytest.mark.parametrize(
    ("token", "said"),
    [
        (None, "asks for a token: set POLICY_QA_CHROMA_TOKEN"),
        ("wrong-token", "refused the token in POLICY_QA_CHROMA_TOKEN (sent as Authorization)"),
    ],
)
def test_a_missing_or_wrong_token_is_a_clear_error(
    secured_url: str, tmp_path: Path, token: str | None, said: str
) -> None:
    qa = assistant(tmp_path, chroma_url=secured_url, chroma_token=token)
    with pytest.raises(StoreUnavailableError) as caught:
        qa.documents()
    assert said in str(caught.value) and secured_url in str(caught.value)
    assert "wrong-token" not in str(caught.value)


def test_a_missing_database_says_how_to_make_it(secured_url: str, tmp_path: Path) -> None:
    qa = assistant(
        tmp_path,
        chroma_url=secured_url,
        chroma_token=TOKEN,
        chroma_tenant=TENANT,
        chroma_database="nowhere",
    )
    with pytest.raises(StoreUnavailableError, match=r"Database \[nowhere\] not found") as caught:
        qa.documents()
    assert "create_database" in str(caught.value) and TOKEN not in str(caught.value)


def test_server_settings_need_a_server() -> None:
    with pytest.raises(ConfigError, match="chroma_token, chroma_tenant apply to a Chroma server"):
        Settings(chroma_token=TOKEN, chroma_tenant=TENANT)
    with pytest.raises(ConfigError, match="chroma_token_header must be one of"):
        Settings(chroma_url="http://127.0.0.1:8000", chroma_token_header="X-Token")
