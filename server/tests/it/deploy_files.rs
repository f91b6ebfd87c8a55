//! The deployment files at the repository root stay in step with the code: the Compose
//! stack has the services and volumes docs/deployment.md describes, Caddy proxies to the
//! web container, `.env.example` documents every variable `config.rs` reads, and the
//! scripts CI calls are executable. No Docker is needed: the files are only read.

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde_yaml::Value;

/// The repository root (the workspace holding `server/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn compose() -> Value {
    serde_yaml::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is valid YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose
        .get("services")
        .and_then(|s| s.get(name))
        .unwrap_or_else(|| panic!("docker-compose.yml has no service {name:?}"))
}

fn image(service: &Value) -> &str {
    service.get("image").and_then(Value::as_str).unwrap_or("")
}

/// `depends_on` in either Compose form: a list of names or a map of name to condition.
fn depends_on(service: &Value) -> Vec<String> {
    match service.get("depends_on") {
        Some(Value::Sequence(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::Mapping(map)) => map
            .keys()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// A service's environment variable in either form (`KEY: value` or `- KEY=value`).
fn env_value(service: &Value, key: &str) -> Option<String> {
    match service.get("environment")? {
        Value::Mapping(map) => map.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other)
                .unwrap_or_default()
                .trim()
                .to_string(),
        }),
        Value::Sequence(items) => items.iter().filter_map(Value::as_str).find_map(|item| {
            item.strip_prefix(key)?
                .strip_prefix('=')
                .map(str::to_string)
        }),
        _ => None,
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_sequence)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_has_the_three_services_on_the_expected_images() {
    let compose = compose();
    for name in ["proxy", "web", "db"] {
        service(&compose, name);
    }
    // Nothing in the server uses Redis yet: the stack must not claim it does.
    assert!(
        compose
            .get("services")
            .and_then(|s| s.get("cache"))
            .is_none(),
        "no Redis service until the server uses one"
    );
    assert!(image(service(&compose, "proxy")).starts_with("caddy:2"));
    assert!(
        image(service(&compose, "db")).starts_with("postgres:16"),
        "db must be postgres:16"
    );
    assert!(
        service(&compose, "web").get("build").is_some(),
        "web is built from the Dockerfile"
    );
}

#[test]
fn compose_declares_every_named_volume() {
    let compose = compose();
    let volumes = compose
        .get("volumes")
        .and_then(Value::as_mapping)
        .expect("docker-compose.yml declares top-level volumes");
    for name in [
        "media",
        "static_assets",
        "pg_data",
        "backups",
        "caddy_data",
        "caddy_config",
    ] {
        assert!(
            volumes.contains_key(name),
            "volume {name:?} is not declared"
        );
    }
}

#[test]
fn web_waits_for_a_healthy_database_and_talks_to_the_stack() {
    let compose = compose();
    let web = service(&compose, "web");
    let deps = depends_on(web);
    assert!(
        deps.iter().any(|d| d == "db"),
        "web must depend on db: {deps:?}"
    );
    let db_condition = web
        .get("depends_on")
        .and_then(|d| d.get("db"))
        .and_then(|d| d.get("condition"))
        .and_then(Value::as_str);
    assert_eq!(db_condition, Some("service_healthy"));
    assert!(
        service(&compose, "db").get("healthcheck").is_some(),
        "service_healthy needs a healthcheck on db"
    );

    let database_url = env_value(web, "DATABASE_URL").expect("web sets DATABASE_URL");
    assert!(
        database_url.contains("@db:5432/"),
        "DATABASE_URL points at db: {database_url}"
    );
    assert!(
        env_value(web, "REDIS_URL").is_none(),
        "the server reads no REDIS_URL yet"
    );
    let bind = env_value(web, "BIND").unwrap_or_default();
    assert!(
        bind.is_empty() || bind.ends_with(":8000"),
        "Caddy proxies to web:8000, so BIND must use port 8000: {bind}"
    );

    let volumes = string_list(web.get("volumes"));
    assert!(
        volumes
            .iter()
            .any(|v| v.starts_with("media:/app/var/media")),
        "uploaded media must live on the media volume: {volumes:?}"
    );
}

#[test]
fn proxy_publishes_http_and_https_and_mounts_the_caddyfile() {
    let compose = compose();
    let proxy = service(&compose, "proxy");
    let ports = string_list(proxy.get("ports"));
    for port in ["80:80", "443:443"] {
        assert!(
            ports.iter().any(|p| p == port),
            "proxy must publish {port}: {ports:?}"
        );
    }
    let volumes = string_list(proxy.get("volumes"));
    assert!(volumes
        .iter()
        .any(|v| v.starts_with("./Caddyfile:/etc/caddy/Caddyfile")));
    assert!(volumes.iter().any(|v| v.starts_with("caddy_data:")));
    assert!(volumes.iter().any(|v| v.starts_with("static_assets:")));
}

#[test]
fn caddy_serves_both_names_and_proxies_to_web() {
    let caddyfile = read("Caddyfile");
    assert!(caddyfile.contains("reverse_proxy web:8000"));
    for host in ["auuction.org", "www.auuction.org"] {
        let declared = caddyfile
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#') && line.ends_with('{'))
            .any(|line| {
                line.trim_end_matches('{')
                    .split([',', ' '])
                    .any(|address| address.trim() == host)
            });
        assert!(declared, "Caddyfile has no site block for {host}");
    }
}

/// Every `"NAME"` given to `var(` or `parse_var(` in config.rs, in order of appearance.
fn config_variables() -> Vec<String> {
    let source = read("server/src/config.rs");
    let mut names = Vec::new();
    for (at, _) in source.match_indices("var(") {
        // `var(` also ends `parse_var(`; anything else (`fn var(name`) has no literal.
        let rest = source[at + "var(".len()..].trim_start();
        let Some(literal) = rest.strip_prefix('"') else {
            continue;
        };
        let Some(end) = literal.find('"') else {
            continue;
        };
        let name = &literal[..end];
        let is_env_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if is_env_name && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

#[test]
fn env_example_documents_every_variable_the_server_reads() {
    let names = config_variables();
    // Guards the scan itself: config.rs reads well over a dozen variables.
    assert!(
        names.len() >= 15,
        "scan of config.rs found too few variables: {names:?}"
    );
    for expected in [
        "DATABASE_URL",
        "SECRET_KEY",
        "BASE_URL",
        "RATE_LIMIT_WRITE_PER_ACCOUNT",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "scan missed {expected}: {names:?}"
        );
    }

    let example = read(".env.example");
    let listed = |name: &str| {
        example.lines().any(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix('#').map(str::trim_start).unwrap_or(line);
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('='))
        })
    };
    let missing: Vec<&String> = names.iter().filter(|name| !listed(name)).collect();
    assert!(missing.is_empty(), ".env.example does not list {missing:?}");
    assert!(
        listed("POSTGRES_PASSWORD"),
        "docker-compose.yml needs POSTGRES_PASSWORD"
    );
}

#[test]
fn dockerfile_is_multi_stage_and_serves_on_8000() {
    let dockerfile = read("Dockerfile");
    let stages = dockerfile
        .lines()
        .filter(|line| line.trim_start().to_ascii_uppercase().starts_with("FROM "))
        .count();
    assert!(
        stages >= 2,
        "Dockerfile should have a build and a runtime stage, has {stages}"
    );
    assert!(dockerfile.contains("EXPOSE 8000"));
    assert!(dockerfile.contains("BIND=0.0.0.0:8000"));
}

#[test]
fn scripts_are_executable() {
    for script in [
        "scripts/test.sh",
        "scripts/services.sh",
        "scripts/test-services.sh",
        "scripts/backup.sh",
        "scripts/demo.sh",
        "scripts/loadtest-smoke.sh",
        "scripts/bench-storm.sh",
        ".ci/run",
    ] {
        let text = read(script);
        assert!(text.starts_with("#!"), "{script} has no #! line");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(root().join(script))
                .expect("script exists")
                .permissions()
                .mode();
            assert!(
                mode & 0o111 != 0,
                "{script} is not executable (chmod +x {script})"
            );
        }
    }
}
