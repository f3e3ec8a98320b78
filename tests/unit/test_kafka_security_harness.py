"""The secured harness without a broker: TLS files, SCRAM format arguments, broker and
client settings, node files, and ACLs as data."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from streamer.errors import KafkaHarnessError
from streamer.kafka.acls import Acl, app_acls, kafka_acls_lines, ops_acls
from streamer.testing.kafka.cluster import LocalKafkaCluster
from streamer.testing.kafka.config import NodeSpec, server_properties
from streamer.testing.kafka.node import KafkaNode
from streamer.testing.kafka.security import (
    SCRAM_ITERATIONS,
    Credentials,
    KafkaSecurity,
    broker_settings,
    client_settings,
    format_arguments,
    scram_format_argument,
)
from streamer.testing.kafka.tls import TlsFiles, make_tls_files


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def test_the_server_certificate_is_signed_by_the_ca_and_names_loopback(tls: TlsFiles) -> None:
    ca = x509.load_pem_x509_certificate(tls.ca_path.read_bytes())
    data = tls.keystore_path.read_bytes()
    server, chained_ca = x509.load_pem_x509_certificates(data)
    server.verify_directly_issued_by(ca)
    assert chained_ca == ca
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_keystore_holds_an_unencrypted_pkcs8_key_readable_by_its_owner(tls: TlsFiles) -> None:
    data = tls.keystore_path.read_bytes()
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, as Kafka's PEM store wants
    serialization.load_pem_private_key(data, password=None)
    assert stat.S_IMODE(tls.keystore_path.stat().st_mode) == 0o600


def test_the_scram_argument_carries_a_salted_password_not_the_password() -> None:
    user = Credentials("admin", "s3cret-pass")
    salt = b"0123456789abcdef"
    argument = scram_format_argument(user, salt=salt)
    salted = hashlib.pbkdf2_hmac("sha512", b"s3cret-pass", salt, SCRAM_ITERATIONS)
    assert argument == (
        "SCRAM-SHA-512=[name=admin,"
        f'salt="{base64.b64encode(salt).decode()}",'
        f'saltedpassword="{base64.b64encode(salted).decode()}",'
        f"iterations={SCRAM_ITERATIONS}]"
    )
    assert "s3cret-pass" not in argument


def test_format_adds_the_admin_and_the_initial_users() -> None:
    security = KafkaSecurity(users=(Credentials("app", "pw"),))
    args = format_arguments(security)
    assert args[0::2] == ["--add-scram", "--add-scram"]
    assert "name=admin," in args[1]
    assert "name=app," in args[3]
    assert all(security.admin.password not in a for a in args)


def test_broker_settings_enforce_acls_over_sasl_ssl(tls: TlsFiles) -> None:
    security = KafkaSecurity()
    settings = broker_settings(security, tls)
    assert settings["authorizer.class.name"].endswith("StandardAuthorizer")
    assert settings["allow.everyone.if.no.acl.found"] == "false"
    # The PLAINTEXT controller listener's principal must be super to register brokers.
    assert settings["super.users"] == "User:admin;User:ANONYMOUS"
    assert settings["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert settings["ssl.keystore.type"] == settings["ssl.truststore.type"] == "PEM"
    jaas = settings["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert f'password="{security.admin.password}"' in jaas


def test_client_settings_and_credentials_keep_the_password_out_of_reprs(tls: TlsFiles) -> None:
    user = Credentials("app", "hunter2-hunter2")
    assert "hunter2" not in repr(user)
    assert user.principal == "User:app"
    assert client_settings(user, str(tls.ca_path)) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "app",
        "sasl.password": "hunter2-hunter2",
        "ssl.ca.location": str(tls.ca_path),
    }


def test_a_secured_node_listens_on_sasl_ssl_and_formats_with_users(tmp_path: Path) -> None:
    spec = NodeSpec(node_id=1, port=9093, controller_port=9094)
    props = server_properties(spec, voters=[spec], log_dir=tmp_path, listener="SASL_SSL")
    assert props["listeners"] == "SASL_SSL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094"
    assert props["advertised.listeners"] == "SASL_SSL://127.0.0.1:9093"
    node = KafkaNode(
        spec,
        voters=[spec],
        cluster_id="abc",
        node_dir=tmp_path / "node-1",
        jars_dir=tmp_path,
        listener="SASL_SSL",
        format_args=["--add-scram", "X"],
    )
    assert node.format_command()[-2:] == ["--add-scram", "X"]
    node.write_config()
    assert stat.S_IMODE(node.properties_path.stat().st_mode) == 0o600
    assert "listeners=SASL_SSL://" in node.properties_path.read_text()


def test_client_config_is_empty_on_a_plain_cluster_and_needs_a_started_secured_one() -> None:
    assert LocalKafkaCluster().client_config() == {}
    with pytest.raises(KafkaHarnessError, match="not started"):
        LocalKafkaCluster(security=KafkaSecurity()).client_config()
    assert "SASL_SSL" in repr(LocalKafkaCluster(security=KafkaSecurity()))


# -- ACLs as data ------------------------------------------------------------------------
def test_app_acls_are_the_minimal_proven_list() -> None:
    acls = app_acls("orders", inputs=["in"], outputs=["out"])
    assert acls == [
        Acl("topic", "in", "READ"),
        Acl("topic", "out", "WRITE"),
        Acl("topic", "orders-", "CREATE", prefixed=True),
        Acl("topic", "orders-", "READ", prefixed=True),
        Acl("topic", "orders-", "WRITE", prefixed=True),
        Acl("topic", "orders-", "DESCRIBE_CONFIGS", prefixed=True),
        Acl("topic", "orders-", "DELETE", prefixed=True),
        Acl("group", "orders", "READ"),
        Acl("transactional-id", "orders-", "WRITE", prefixed=True),
    ]
    at_least_once = app_acls("orders", inputs=["in"], outputs=["out"], exactly_once=False)
    assert all(a.resource != "transactional-id" for a in at_least_once)
    assert ops_acls("orders") == [Acl("group", "orders", "DELETE")]


def test_acls_render_as_kafka_acls_lines_one_per_resource() -> None:
    acls = [*app_acls("orders", inputs=["in"], outputs=["out"]), Acl("cluster", "x", "DESCRIBE")]
    assert kafka_acls_lines("User:app", acls) == [
        "--add --allow-principal User:app --operation Read --topic in",
        "--add --allow-principal User:app --operation Write --topic out",
        "--add --allow-principal User:app --operation Create --operation Read "
        "--operation Write --operation DescribeConfigs --operation Delete "
        "--topic orders- --resource-pattern-type prefixed",
        "--add --allow-principal User:app --operation Read --group orders",
        "--add --allow-principal User:app --operation Write "
        "--transactional-id orders- --resource-pattern-type prefixed",
        "--add --allow-principal User:app --operation Describe --cluster",
    ]


def test_acls_become_confluent_kafka_bindings() -> None:
    from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

    binding = Acl("transactional-id", "orders-", "WRITE", prefixed=True).binding("User:app")
    assert binding.restype == ResourceType.TRANSACTIONAL_ID
    assert binding.resource_pattern_type == ResourcePatternType.PREFIXED
    assert binding.operation == AclOperation.WRITE
    assert (binding.principal, binding.host) == ("User:app", "*")
    assert Acl("cluster", "kafka-cluster", "DESCRIBE").binding("User:a").restype == (
        ResourceType.BROKER
    )


def test_unknown_resources_and_operations_are_refused() -> None:
    with pytest.raises(ValueError, match="resource"):
        Acl("table", "x", "READ")
    with pytest.raises(ValueError, match="operation"):
        Acl("topic", "x", "Read")
