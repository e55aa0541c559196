use super::*;

const GOOD: &str = r#"
data_dir = "../data"
routes = "routes.toml"

[plugins.lab]
path = "../plugins/lab.wasm"
[plugins.lab.limits]
memory_mib = 32
[plugins.lab.settings]
default_offset = "+01:00"
codes = { GLU = "2345-7" }

[sources.lab-mllp]
type = "mllp"
listen = "127.0.0.1:2575"
plugin = "lab"

[sources.inbox]
type = "inbox"
dir = "inbox"
plugin = "lab"
charset = "ISO-8859-1"

[destinations.out]
type = "file"
dir = "out"

[destinations.hook]
type = "http"
url = "http://127.0.0.1:9/hook"
mode = "webhook"
retry = { max_attempts = 3 }
"#;

#[test]
fn paths_resolve_against_the_config_folder_and_data_dir() {
    let c = Config::parse(Path::new("/etc/p/passerelle.toml"), GOOD, None).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/etc/p/../data"));
    assert_eq!(c.routes, PathBuf::from("/etc/p/routes.toml"));
    assert_eq!(
        c.plugins["lab"].path,
        PathBuf::from("/etc/p/../plugins/lab.wasm")
    );
    assert_eq!(c.plugins["lab"].limits.memory_mib, 32);
    assert_eq!(
        c.plugins["lab"].limits.timeout_ms,
        crate::plugin::PluginLimits::default().timeout_ms
    );
    assert!(c.plugins["lab"].settings_json.contains(r#""GLU":"2345-7""#));
    assert_eq!(c.journal.path, PathBuf::from("/etc/p/../data/journal.db"));
    match &c.sources["inbox"] {
        SourceConfig::Inbox(i) => assert_eq!(i.dir, PathBuf::from("/etc/p/inbox")),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.sources["inbox"].charset(), Some("ISO-8859-1"));
    match &c.destinations["out"] {
        DestinationConfig::File(f) => assert_eq!(f.dir, PathBuf::from("/etc/p/../data/out")),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.destinations["hook"].retry().unwrap().max_attempts, 3);
}

#[test]
fn data_dir_flag_overrides() {
    let c = Config::parse(Path::new("p.toml"), GOOD, Some(Path::new("/tmp/d"))).unwrap();
    assert_eq!(c.journal.path, PathBuf::from("/tmp/d/journal.db"));
    assert_eq!(c.component_cache, PathBuf::from("/tmp/d/cache/components"));
}

#[test]
fn the_component_cache_defaults_under_the_data_dir_and_can_be_moved() {
    let c = Config::parse(Path::new("/etc/p/passerelle.toml"), GOOD, None).unwrap();
    assert_eq!(
        c.component_cache,
        PathBuf::from("/etc/p/../data/cache/components")
    );
    // Set, it resolves against the config folder and a --data-dir does not move it.
    let src = format!("component_cache = \"cache\"\n{GOOD}");
    for data_dir in [None, Some(Path::new("/tmp/d"))] {
        let c = Config::parse(Path::new("/etc/p/passerelle.toml"), &src, data_dir).unwrap();
        assert_eq!(c.component_cache, PathBuf::from("/etc/p/cache"));
    }
}

fn first_error(src: &str) -> TomlError {
    match Config::parse(Path::new("c.toml"), src, None) {
        Err(ConfigError::Invalid(mut e)) => e.remove(0),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn unknown_key_is_an_error_with_position() {
    let e = first_error("data_dir = \"d\"\nbogus = 1\n");
    assert_eq!((e.line, e.column), (2, 1), "{e}");
    assert!(e.message.contains("bogus"), "{e}");
}

#[test]
fn unknown_key_inside_a_source_is_an_error() {
    let src = GOOD.replace(
        "listen = \"127.0.0.1:2575\"",
        "listen = \"127.0.0.1:2575\"\nlisten_port = 3",
    );
    let e = first_error(&src);
    assert!(e.message.contains("listen_port"), "{e}");
    assert!(e.line > 0);
}

#[test]
fn wrong_type_names_what_was_expected() {
    let src = GOOD.replace("memory_mib = 32", "memory_mib = \"lots\"");
    let e = first_error(&src);
    assert!(
        e.message.contains("integer") || e.message.contains("u32"),
        "{e}"
    );
    assert_eq!(e.line, 8, "{e}");
}

#[test]
fn source_with_undefined_plugin_is_reported_at_the_source() {
    let src = GOOD.replace(
        "dir = \"inbox\"\nplugin = \"lab\"",
        "dir = \"inbox\"\nplugin = \"nope\"",
    );
    let e = first_error(&src);
    assert!(e.message.contains("\"nope\""), "{e}");
    assert!(e.line >= 17, "{e}");
}

#[test]
fn example_config_parses() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/passerelle.toml"
    ));
    let c = Config::load(path, None).unwrap();
    assert!(c.plugins.contains_key("hl7v2-lab"));
    assert!(
        matches!(c.sources.get("lab-mllp"), Some(SourceConfig::Mllp(m)) if m.listen == "127.0.0.1:2575")
    );
    // The shared record runs as is: its actors file is there and every actor in it loads.
    let mut store = c.destinations["shared-record"].clone();
    crate::store::resolve_paths(&mut store, &c.data_dir, path.parent().unwrap());
    let DestinationConfig::RecordStore(store) = store else {
        panic!("shared-record is not a record store");
    };
    let api = store.api.expect("the example runs the record store's API");
    let actors = crate::store::actors::Actors::load(&api.actors).unwrap();
    assert_eq!(actors.len(), 4);
}

#[test]
fn the_journal_commit_wait_is_read_and_bounded() {
    let c = Config::parse(Path::new("p.toml"), GOOD, None).unwrap();
    assert_eq!(c.journal.commit_wait, crate::journal::DEFAULT_COMMIT_WAIT);
    for (text, micros) in [("2ms", 2_000), ("0s", 0), ("750us", 750)] {
        let src = format!("{GOOD}\n[journal]\ncommit_wait = \"{text}\"\n");
        let c = Config::parse(Path::new("p.toml"), &src, None).unwrap();
        assert_eq!(
            c.journal.commit_wait,
            std::time::Duration::from_micros(micros)
        );
    }
    for (text, why) in [("1s", "at most 50ms"), ("soon", "expected a duration")] {
        let src = format!("{GOOD}\n[journal]\ncommit_wait = \"{text}\"\n");
        let err = Config::parse(Path::new("p.toml"), &src, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("journal.commit_wait") && err.contains(why) && err.contains("p.toml:"),
            "{err}"
        );
    }
}

#[test]
fn admin_and_retention_are_read_and_checked() {
    let c = Config::parse(Path::new("/etc/p/passerelle.toml"), GOOD, None).unwrap();
    assert!(c.admin.is_none() && c.journal.retain_delivered.is_none());

    let src = format!(
        "{GOOD}\n[journal]\nretain_delivered = \"30d\"\n\n[admin]\nlisten = \"127.0.0.1:8086\"\n\
         token_file = \"tokens\"\ntoken_env = \"PASSERELLE_ADMIN_TOKEN\"\n"
    );
    let c = Config::parse(Path::new("/etc/p/passerelle.toml"), &src, None).unwrap();
    assert_eq!(
        c.journal.retain_delivered,
        Some(std::time::Duration::from_secs(30 * 86_400))
    );
    let admin = c.admin.unwrap();
    assert_eq!(admin.token_file, Some(PathBuf::from("/etc/p/tokens")));
    assert_eq!(admin.token_env.as_deref(), Some("PASSERELLE_ADMIN_TOKEN"));
    assert!(!admin.allow_unauthenticated_loopback);

    let zero = format!("{GOOD}\n[journal]\nretain_delivered = \"0s\"\n");
    let err = Config::parse(Path::new("p.toml"), &zero, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("journal.retain_delivered must be longer than 0"),
        "{err}"
    );
    let bad = format!("{GOOD}\n[journal]\nretain_delivered = \"a month\"\n");
    let err = Config::parse(Path::new("p.toml"), &bad, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("retain_delivered") && err.contains("p.toml:"),
        "{err}"
    );
    let bad = format!("{GOOD}\n[admin]\nlisten = \"127.0.0.1:8086\"\ntoken = \"x\"\n");
    let err = Config::parse(Path::new("p.toml"), &bad, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("token"), "{err}");
}

#[test]
fn reliability_and_security_keys() {
    let defaults = Config::parse(Path::new("/etc/p/passerelle.toml"), GOOD, None).unwrap();
    assert_eq!(defaults.delivery.max_pending, 1_000_000);
    assert_eq!(defaults.delivery.max_pending_wait_ms, 5_000);
    assert_eq!(defaults.journal.max_size_mib, None);
    assert_eq!(defaults.plugins["lab"].limits.breaker_failures, 5);
    assert!(defaults.plugins["lab"].limits.max_instances >= 2);
    match &defaults.sources["lab-mllp"] {
        SourceConfig::Mllp(m) => assert_eq!(m.max_connections_per_peer, 0),
        other => panic!("{other:?}"),
    }

    let src = format!(
        "{GOOD}
[plugins.lab.limits]
breaker_failures = 0
[sources.web]
type = \"http\"
listen = \"127.0.0.1:0\"
plugin = \"lab\"
token_file = \"ingest-tokens\"
token_env = \"LAB_TOKEN\"
max_connections_per_peer = 8
[journal]
max_size_mib = 2048
[delivery]
max_pending = 10
max_pending_wait_ms = 250
"
    )
    // GOOD already has a [plugins.lab.limits] table: merge the key into it instead.
    .replacen("[plugins.lab.limits]\nbreaker_failures = 0\n", "", 1)
    .replacen(
        "memory_mib = 32",
        "memory_mib = 32\nbreaker_failures = 0\nmax_instances = 3",
        1,
    );
    let c = Config::parse(Path::new("/etc/p/passerelle.toml"), &src, None).unwrap();
    assert_eq!(c.plugins["lab"].limits.breaker_failures, 0);
    assert_eq!(c.plugins["lab"].limits.max_instances, 3);
    assert_eq!(c.journal.max_size_mib, Some(2048));
    assert_eq!(
        (c.delivery.max_pending, c.delivery.max_pending_wait_ms),
        (10, 250)
    );
    match &c.sources["web"] {
        SourceConfig::Http(h) => {
            assert_eq!(h.token_file, Some(PathBuf::from("/etc/p/ingest-tokens")));
            assert_eq!(h.token_env.as_deref(), Some("LAB_TOKEN"));
            assert_eq!(h.max_connections_per_peer, 8);
            assert!(h.requires_token());
        }
        other => panic!("{other:?}"),
    }
    let e = first_error("[journal]\nmax_size_mib = 0\n");
    assert!(
        e.to_string().contains("max_size_mib must be at least 1"),
        "{e}"
    );
}

#[test]
fn jetstream_journal_is_read_with_defaults_and_checked() {
    let src = format!(
        "{GOOD}\n[journal.jetstream]\nurls = [\"nats://n1:4222\", \"nats://n2:4222\"]\n\
         replicas = 3\ncredentials = \"nats/passerelle.creds\"\nnode = \"lab-1\"\n"
    );
    let c = Config::parse(Path::new("/etc/p/passerelle.toml"), &src, None).unwrap();
    let js = c.journal.jetstream.expect("jetstream");
    assert_eq!(js.urls, ["nats://n1:4222", "nats://n2:4222"]);
    assert_eq!(js.replicas, 3);
    assert_eq!(
        js.credentials,
        Some(PathBuf::from("/etc/p/nats/passerelle.creds"))
    );
    assert_eq!(js.node.as_deref(), Some("lab-1"));
    assert_eq!((js.prefix.as_str(), js.ack_wait_ms), ("passerelle", 30_000));
    assert!(
        Config::parse(Path::new("p.toml"), GOOD, None)
            .unwrap()
            .journal
            .jetstream
            .is_none(),
        "the embedded journal stays the default"
    );

    for (bad, expected) in [
        ("urls = []", "at least one nats:// URL"),
        (
            "urls = [\"nats://n1\"]\nreplicas = 7",
            "replicas must be between 1 and 5",
        ),
        (
            "urls = [\"nats://n1\"]\nprefix = \"a.b\"",
            "letters, digits",
        ),
        ("urls = [\"nats://n1\"]\nadapters = 0", "must be at least 1"),
        ("urls = [\"nats://n1\"]\nbogus = 1", "unknown field"),
    ] {
        let e = first_error(&format!("[journal.jetstream]\n{bad}\n"));
        assert!(e.to_string().contains(expected), "{bad}: {e}");
    }
}
