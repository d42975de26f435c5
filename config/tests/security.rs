//! Credentials and TLS blocks: the receivers', the admin port's and the probe's connection to
//! the gateway; what they accept, and each way they can be wrong.

use std::path::Path;

use wbpf_config::{parse_str, GatewayClientConfig, Secret};

/// A config whose TLS blocks point at files that exist.
fn with_files(dir: &Path, text: &str) -> String {
    for name in ["cert.pem", "key.pem", "ca.pem"] {
        std::fs::write(dir.join(name), "not checked here").expect("write");
    }
    text.replace("DIR", &dir.display().to_string())
}

#[test]
fn auth_and_tls_blocks_parse_with_env_values_and_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::env::set_var("WBPF_TEST_SECURITY_TOKEN", "t0ken-from-env");
    let text = with_files(
        dir.path(),
        r#"
receivers:
  auth:
    bearer_token: "${env:WBPF_TEST_SECURITY_TOKEN}"
    api_key: {value: k3y}
  tls:
    cert_file: DIR/cert.pem
    key_file: DIR/key.pem
    client_ca_file: DIR/ca.pem
admin:
  auth: {api_key: {header: X-Admin-Key, value: adm1n}}
probe:
  gateway:
    endpoint: https://gateway.example:4317
    auth: {bearer_token: t0ken-from-env}
    tls: {ca_file: DIR/ca.pem, cert_file: DIR/cert.pem, key_file: DIR/key.pem}
"#,
    );
    let config = parse_str(&text, "secure.yaml").expect("valid");

    let receivers = &config.gateway.receivers;
    let auth = receivers.auth.as_ref().expect("receivers.auth");
    assert_eq!(auth.bearer_token, Some(Secret::new("t0ken-from-env")));
    let key = auth.api_key.as_ref().expect("api_key");
    assert_eq!(
        (key.header.as_str(), key.value.expose()),
        ("x-api-key", "k3y")
    );
    let tls = receivers.tls.as_ref().expect("receivers.tls");
    assert_eq!(tls.client_ca_file, Some(dir.path().join("ca.pem")));

    // An admin block without `listen` keeps the loopback default.
    let admin = config.gateway.admin.as_ref().expect("admin");
    assert!(admin.listen.ip().is_loopback(), "{}", admin.listen);
    assert_eq!(admin.listen.port(), 9464);
    let admin_key = admin
        .auth
        .as_ref()
        .and_then(|a| a.api_key.as_ref())
        .expect("key");
    assert_eq!(admin_key.header, "X-Admin-Key");

    let gateway = &config.probe.expect("probe").gateway;
    assert_eq!(gateway.endpoint, "https://gateway.example:4317");
    let probe_tls = gateway.tls.as_ref().expect("probe.gateway.tls");
    assert_eq!(probe_tls.key_file, Some(dir.path().join("key.pem")));
}

#[test]
fn the_listeners_are_open_and_admin_is_on_loopback_by_default() {
    let config = parse_str("probe: {gateway: http://10.0.0.5:4317}\n", "d.yaml").expect("valid");
    let gateway = config.gateway;
    assert!(gateway.receivers.auth.is_none() && gateway.receivers.tls.is_none());
    let admin = gateway.admin.expect("admin on by default");
    assert!(admin.listen.ip().is_loopback(), "{}", admin.listen);
    assert!(admin.auth.is_none() && admin.tls.is_none());
    let probe = config.probe.expect("probe");
    assert_eq!(
        probe.gateway,
        GatewayClientConfig::from("http://10.0.0.5:4317")
    );
}

#[test]
fn a_printed_config_never_shows_a_credential() {
    let text = "receivers:\n  auth:\n    bearer_token: sup3r-secret\n    \
                api_key: {value: an0ther-secret}\n";
    let config = parse_str(text, "s.yaml").expect("valid");
    let printed = format!("{config:?}");
    assert!(printed.contains("Secret(***)"), "{printed}");
    assert!(!printed.contains("sup3r-secret"), "{printed}");
    assert!(!printed.contains("an0ther-secret"), "{printed}");
}

#[test]
fn each_bad_security_setting_names_file_line_and_key() {
    let cases = [
        (
            "receivers:\n  auth: {}\n",
            "bad.yaml:2:3: receivers.auth: set bearer_token or api_key",
        ),
        (
            "receivers:\n  auth:\n    bearer_token: \"\"\n",
            "bad.yaml:3:5: receivers.auth.bearer_token: must not be empty",
        ),
        (
            "receivers:\n  trigger_auth: {}\n",
            "bad.yaml:2:3: receivers.trigger_auth: set bearer_token or api_key",
        ),
        (
            "receivers:\n  auth: {bearer_token: same}\n  trigger_auth:\n    bearer_token: same\n",
            "bad.yaml:4:5: receivers.trigger_auth.bearer_token: must differ from receivers.auth's",
        ),
        (
            "receivers:\n  auth: {bearer_token: same}\n  trigger_auth:\n    \
             api_key: {header: x-probe-key, value: same}\n",
            "bad.yaml:4:36: receivers.trigger_auth.api_key.value: must differ from \
             receivers.auth's",
        ),
        (
            "admin:\n  auth:\n    bearer_token: two words\n",
            "bad.yaml:3:5: admin.auth.bearer_token: must be visible ASCII without spaces",
        ),
        (
            "receivers:\n  auth:\n    api_key: {header: \"x key\", value: k}\n",
            "bad.yaml:3:15: receivers.auth.api_key.header: must be a header name",
        ),
        (
            "receivers:\n  auth:\n    api_key: {header: Authorization, value: k}\n",
            "bad.yaml:3:15: receivers.auth.api_key.header: is reserved",
        ),
        (
            "receivers:\n  tls:\n    cert_file: /nonexistent/wbpf/cert.pem\n    \
             key_file: /nonexistent/wbpf/key.pem\n",
            "bad.yaml:3:5: receivers.tls.cert_file: cannot read /nonexistent/wbpf/cert.pem: No \
             such file",
        ),
        (
            "admin:\n  tls: {cert_file: /nonexistent/c.pem}\n",
            "bad.yaml:2:9: admin.tls.key_file: missing field `key_file`",
        ),
        (
            "receivers:\n  tls: {cert_file: a, key_file: b, ca_file: c}\n",
            "bad.yaml:2:36: receivers.tls.ca_file: unknown field `ca_file`",
        ),
        (
            "probe:\n  gateway: https://gw:4317\n",
            "bad.yaml:2:3: probe.gateway.tls: an https:// endpoint needs tls.ca_file",
        ),
        (
            "probe:\n  gateway:\n    endpoint: gw:4317\n",
            "bad.yaml:3:5: probe.gateway.endpoint: must start with http:// or https://",
        ),
        (
            "probe:\n  gateway:\n    endpoint: http://gw:4317\n    tls: {ca_file: /etc/hosts}\n",
            "bad.yaml:4:5: probe.gateway.tls: needs an https:// endpoint",
        ),
        (
            "probe:\n  gateway:\n    endpoint: https://gw:4317\n    \
             tls: {ca_file: /etc/hosts, cert_file: /etc/hosts}\n",
            "bad.yaml:4:32: probe.gateway.tls.cert_file: needs key_file too",
        ),
        (
            "probe:\n  gateway:\n    endpoint: http://gw:4317\n    token: x\n",
            "bad.yaml:4:5: probe.gateway.token: unknown field `token`",
        ),
    ];
    for (text, expected) in cases {
        let err = match parse_str(text, "bad.yaml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(err) => err,
        };
        let message = err.to_string();
        assert!(message.starts_with(expected), "{text}\n→ {message}");
    }
}
