//! `passerelle plugin new NAME [--dir plugins] [--sdk PATH]`: scaffolds an adapter crate that
//! builds, passes its own tests and runs under `passerelle adapt` as generated.
//!
//! The templates are embedded in the binary (`plugin_template/`). Where the crate lands decides
//! how it is built:
//!
//! - **Directly in the `plugins/` folder of a Passerelle checkout** (the default, `--dir
//!   plugins`, run from the repository root): a member of the Passerelle workspace (its
//!   `members` include `plugins/*`). The SDK is the relative path `../../plugin-sdk`; the
//!   workspace gives the profiles, the lock file and the target dir, and
//!   `scripts/build-plugins.sh` builds it with the others.
//! - **Anywhere else**: a crate of its own. Its Cargo.toml has an empty `[workspace]` table and
//!   the workspace's `[profile.plugin]`; the SDK is an absolute path; the checkout's
//!   `Cargo.lock` is copied, so its dependencies start at the versions the SDK is tested with
//!   (`cargo update` moves on).
//!
//! The SDK used is the first found of: `--sdk` (a `plugin-sdk` folder), the checkout the new
//! crate is in, the checkout the working directory is in, the checkout this binary was built
//! from.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(clap::Subcommand)]
enum PluginCommand {
    /// Scaffold a new adapter crate (a Rust crate built into a wasm32-wasip2 component).
    New(NewArgs),
}

#[derive(clap::Args)]
struct NewArgs {
    /// Crate and plugin name: lowercase letters, digits and dashes (`my-lab`).
    name: String,
    /// Folder to create the crate in (as `DIR/NAME`); created if missing.
    #[arg(long, default_value = "plugins")]
    dir: PathBuf,
    /// The `plugin-sdk` folder of a Passerelle checkout [default: found from the new crate's
    /// folder, the working directory, or where this binary was built].
    #[arg(long)]
    sdk: Option<PathBuf>,
}

pub fn run(args: PluginArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PluginCommand::New(a) => new(a),
    }
}

fn new(args: NewArgs) -> anyhow::Result<ExitCode> {
    let search = SdkSearch {
        explicit: args.sdk.clone(),
        cwd: std::env::current_dir().ok(),
        built_from: Some(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))),
    };
    let g = generate(&args.name, &args.dir, &search)?;
    let shown = args.dir.join(&args.name);
    let wasm = format!("target/wasm32-wasip2/plugin/{}.wasm", g.lib_name);
    let sample = match &g.layout {
        Layout::Member { checkout } => {
            println!(
                "created {} (a member of the Passerelle workspace at {})",
                shown.display(),
                checkout.display()
            );
            println!("next, from {}:", checkout.display());
            println!("  cargo test -p {}", args.name);
            g.dir
                .strip_prefix(checkout)
                .unwrap_or(&g.dir)
                .join("sample.txt")
        }
        Layout::Standalone => {
            println!(
                "created {} (a crate of its own; SDK at {})",
                shown.display(),
                g.sdk.display()
            );
            println!("next, in {}:", shown.display());
            println!("  cargo test");
            PathBuf::from("sample.txt")
        }
    };
    println!(
        "  cargo build --profile plugin --target wasm32-wasip2 -p {}",
        args.name
    );
    println!(
        "  passerelle adapt --plugin {wasm} --content-type text/x-{} {}",
        args.name,
        sample.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Where to look for the SDK, in order.
struct SdkSearch {
    explicit: Option<PathBuf>,
    cwd: Option<PathBuf>,
    built_from: Option<PathBuf>,
}

#[derive(Debug, PartialEq, Eq)]
enum Layout {
    /// In `<checkout>/plugins/`: a member of the Passerelle workspace.
    Member { checkout: PathBuf },
    /// A workspace of its own.
    Standalone,
}

#[derive(Debug)]
struct Generated {
    dir: PathBuf,
    layout: Layout,
    /// The SDK folder, absolute.
    sdk: PathBuf,
    /// `my-lab` → `my_lab` (the `.wasm` file name).
    lib_name: String,
}

const CARGO_TOML: &str = include_str!("plugin_template/Cargo.toml.tmpl");
const STANDALONE_TOML: &str = include_str!("plugin_template/standalone.toml.tmpl");
const LIB_RS: &str = include_str!("plugin_template/lib.rs.tmpl");
const README: &str = include_str!("plugin_template/README.md.tmpl");
const SAMPLE: &str = include_str!("plugin_template/sample.txt");
const GITIGNORE: &str = include_str!("plugin_template/gitignore.tmpl");
/// The workspace's Cargo configuration (the plugins' compiler flags): a crate outside a
/// checkout does not see it, so it gets a copy.
const CARGO_CONFIG: &str = include_str!("../../../.cargo/config.toml");

fn generate(name: &str, dir: &Path, search: &SdkSearch) -> anyhow::Result<Generated> {
    check_name(name)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let parent = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let crate_dir = parent.join(name);
    if crate_dir.exists() {
        bail!("{} already exists", dir.join(name).display());
    }

    let own_checkout = checkout_of(&parent);
    let layout = match &own_checkout {
        Some(c) if c.join("plugins") == parent && workspace_has_plugins_glob(c) => Layout::Member {
            checkout: c.clone(),
        },
        _ => Layout::Standalone,
    };
    let sdk = match (&layout, &search.explicit) {
        (Layout::Member { checkout }, None) => checkout.join("plugin-sdk"),
        (_, Some(explicit)) => {
            let sdk = explicit.canonicalize().with_context(|| format!("--sdk {}", explicit.display()))?;
            if !is_sdk(&sdk) {
                bail!("--sdk {}: not a Passerelle plugin-sdk folder (no wit/adapter.wit and Cargo.toml)", explicit.display());
            }
            sdk
        }
        (Layout::Standalone, None) => [Some(parent.clone()), search.cwd.clone(), search.built_from.clone()]
            .into_iter()
            .flatten()
            .find_map(|start| checkout_of(&start))
            .map(|c| c.join("plugin-sdk"))
            .context("no Passerelle checkout found (from the new crate's folder, the working directory or where this binary was built): pass --sdk <checkout>/plugin-sdk")?,
    };
    let sdk_dep = match &layout {
        Layout::Member { .. } if search.explicit.is_none() => "../../plugin-sdk".to_string(),
        _ => sdk.display().to_string(),
    };

    let lib_name = name.replace('-', "_");
    let type_name = format!("{}Adapter", pascal_case(name));
    let wasm = format!("target/wasm32-wasip2/plugin/{lib_name}.wasm");
    let (standalone, layout_text, where_) = match &layout {
        Layout::Member { .. } => (
            String::new(),
            "This crate is a member of the Passerelle workspace (`plugins/*`): run the commands below \
             from the repository root; `scripts/build-plugins.sh` builds it with the other plugins."
                .to_string(),
            "from the repository root",
        ),
        Layout::Standalone => (
            STANDALONE_TOML.to_string(),
            format!(
                "This crate is a workspace of its own (it has a `[workspace]` table and the `plugin` \
                 profile); it uses the Passerelle SDK at `{}`. Run the commands below in this folder.",
                sdk.display()
            ),
            "in this folder",
        ),
    };
    let vars: [(&str, String); 7] = [
        ("{{name}}", name.to_string()),
        ("{{Type}}", type_name),
        ("{{sdk_path}}", toml::Value::String(sdk_dep).to_string()),
        ("{{standalone}}", standalone),
        ("{{layout}}", layout_text),
        ("{{where}}", where_.to_string()),
        ("{{wasm}}", wasm),
    ];
    let render = |t: &str| vars.iter().fold(t.to_string(), |s, (k, v)| s.replace(k, v));

    let mut files: Vec<(&str, String)> = vec![
        ("Cargo.toml", render(CARGO_TOML)),
        ("src/lib.rs", render(LIB_RS)),
        ("README.md", render(README)),
        ("sample.txt", render(SAMPLE)),
        (".gitignore", GITIGNORE.to_string()),
    ];
    if layout == Layout::Standalone {
        files.push((".cargo/config.toml", CARGO_CONFIG.to_string()));
    }
    let write_all = || -> anyhow::Result<()> {
        for (file, content) in &files {
            let path = crate_dir.join(file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&path, content)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if layout == Layout::Standalone
            && let Some(lock) = sdk
                .parent()
                .map(|c| c.join("Cargo.lock"))
                .filter(|l| l.is_file())
        {
            std::fs::copy(&lock, crate_dir.join("Cargo.lock"))
                .with_context(|| format!("copying {}", lock.display()))?;
        }
        Ok(())
    };
    if let Err(e) = write_all() {
        let _ = std::fs::remove_dir_all(&crate_dir);
        return Err(e);
    }
    Ok(Generated {
        dir: crate_dir,
        layout,
        sdk,
        lib_name,
    })
}

/// Lowercase letters, digits and single dashes, starting with a letter; not a name Cargo or the
/// Passerelle workspace already uses.
fn check_name(name: &str) -> anyhow::Result<()> {
    let well_formed = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !well_formed {
        bail!(
            "plugin name {name:?}: use lowercase letters, digits and single dashes, starting with a letter (e.g. `my-lab`)"
        );
    }
    const RESERVED: &[&str] = &[
        "alloc",
        "core",
        "proc-macro",
        "std",
        "test",
        "build",
        "deps",
        "examples",
        "incremental",
        "self",
        "super",
        "crate",
        "passerelle",
        "passerelle-plugin-sdk",
        "passerelle-tests",
        "plugin-sdk",
    ];
    if RESERVED.contains(&name) {
        bail!("plugin name {name:?} is reserved; choose another");
    }
    Ok(())
}

/// `my-lab` → `MyLab`.
fn pascal_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The Passerelle checkout `start` is in (the nearest ancestor with `plugin-sdk/wit/adapter.wit`).
fn checkout_of(start: &Path) -> Option<PathBuf> {
    let start = start.canonicalize().ok()?;
    start
        .ancestors()
        .find(|a| a.join("Cargo.toml").is_file() && is_sdk(&a.join("plugin-sdk")))
        .map(Path::to_path_buf)
}

fn is_sdk(dir: &Path) -> bool {
    dir.join("wit/adapter.wit").is_file() && dir.join("Cargo.toml").is_file()
}

/// Whether the checkout's workspace takes `plugins/*` as members.
fn workspace_has_plugins_glob(checkout: &Path) -> bool {
    std::fs::read_to_string(checkout.join("Cargo.toml"))
        .ok()
        .and_then(|s| s.parse::<toml::Table>().ok())
        .and_then(|t| {
            let members = t.get("workspace")?.get("members")?.as_array()?.clone();
            Some(members.iter().any(|m| m.as_str() == Some("plugins/*")))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake checkout: a workspace with `plugins/*` and a plugin-sdk folder.
    fn checkout(root: &Path) -> PathBuf {
        let c = root.join("repo");
        std::fs::create_dir_all(c.join("plugin-sdk/wit")).unwrap();
        std::fs::create_dir_all(c.join("plugins")).unwrap();
        std::fs::write(
            c.join("Cargo.toml"),
            "[workspace]\nmembers = [\"core\", \"plugins/*\"]\n",
        )
        .unwrap();
        std::fs::write(c.join("Cargo.lock"), "version = 4\n").unwrap();
        std::fs::write(
            c.join("plugin-sdk/Cargo.toml"),
            "[package]\nname = \"passerelle-plugin-sdk\"\n",
        )
        .unwrap();
        std::fs::write(
            c.join("plugin-sdk/wit/adapter.wit"),
            "package passerelle:adapter@0.1.0;\n",
        )
        .unwrap();
        c.canonicalize().unwrap()
    }

    fn no_search() -> SdkSearch {
        SdkSearch {
            explicit: None,
            cwd: None,
            built_from: None,
        }
    }

    fn manifest(dir: &Path) -> toml::Table {
        std::fs::read_to_string(dir.join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap()
    }

    fn sdk_path(m: &toml::Table) -> String {
        m["dependencies"]["passerelle-plugin-sdk"]["path"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn in_plugins_of_a_checkout_it_is_a_workspace_member() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = checkout(tmp.path());
        let g = generate("my-lab", &repo.join("plugins"), &no_search()).unwrap();
        assert_eq!(
            g.layout,
            Layout::Member {
                checkout: repo.clone()
            }
        );
        let m = manifest(&g.dir);
        assert_eq!(m["package"]["name"].as_str(), Some("my-lab"));
        assert_eq!(sdk_path(&m), "../../plugin-sdk");
        assert!(!m.contains_key("workspace") && !m.contains_key("profile"));
        assert_eq!(m["lib"]["crate-type"].as_array().unwrap().len(), 2);
        assert!(!g.dir.join("Cargo.lock").exists());
        // The checkout's own .cargo/config.toml applies to its members.
        assert!(!g.dir.join(".cargo").exists());
        for file in [
            "Cargo.toml",
            "src/lib.rs",
            "README.md",
            "sample.txt",
            ".gitignore",
        ] {
            let text = std::fs::read_to_string(g.dir.join(file)).unwrap();
            assert!(
                !text.contains("{{"),
                "{file} has an unrendered placeholder:\n{text}"
            );
        }
        let lib = std::fs::read_to_string(g.dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("pub struct MyLabAdapter {"));
        assert!(lib.contains("export_adapter!(MyLabAdapter);"));
        assert!(lib.contains(r#"plugin_info("my-lab""#));
        let readme = std::fs::read_to_string(g.dir.join("README.md")).unwrap();
        assert!(readme.contains("cargo build --profile plugin --target wasm32-wasip2 -p my-lab"));
        assert!(
            readme.contains("passerelle adapt --plugin target/wasm32-wasip2/plugin/my_lab.wasm")
        );
        assert!(readme.contains("member of the Passerelle workspace"));
    }

    #[test]
    fn elsewhere_it_is_standalone_with_an_absolute_sdk_path() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = checkout(tmp.path());
        let outside = tmp.path().join("elsewhere/deeper");
        let search = SdkSearch {
            explicit: None,
            cwd: Some(repo.join("plugins")),
            built_from: None,
        };
        let g = generate("lab2", &outside, &search).unwrap();
        assert_eq!(g.layout, Layout::Standalone);
        assert!(
            outside.join("lab2/src/lib.rs").is_file(),
            "--dir is created"
        );
        let m = manifest(&g.dir);
        assert_eq!(sdk_path(&m), repo.join("plugin-sdk").display().to_string());
        assert!(Path::new(&sdk_path(&m)).is_absolute());
        assert!(m["workspace"].as_table().unwrap().is_empty());
        assert_eq!(m["profile"]["plugin"]["panic"].as_str(), Some("abort"));
        let cargo_config: toml::Table =
            toml::from_str(&std::fs::read_to_string(g.dir.join(".cargo/config.toml")).unwrap())
                .unwrap();
        assert_eq!(
            cargo_config["target"]["wasm32-wasip2"]["rustflags"],
            toml::Value::from(vec!["-C", "llvm-args=-inline-threshold=2000"])
        );
        assert_eq!(
            std::fs::read_to_string(g.dir.join("Cargo.lock")).unwrap(),
            "version = 4\n"
        );
        assert!(
            std::fs::read_to_string(g.dir.join("README.md"))
                .unwrap()
                .contains("workspace of its own")
        );

        // Inside the checkout but not in plugins/: standalone too (not matched by `plugins/*`).
        let g = generate("lab3", &repo.join("scratch"), &no_search()).unwrap();
        assert_eq!(g.layout, Layout::Standalone);
        assert_eq!(
            sdk_path(&manifest(&g.dir)),
            repo.join("plugin-sdk").display().to_string()
        );
    }

    #[test]
    fn the_sdk_search_order() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = checkout(tmp.path());
        let out = tmp.path().join("out");
        // Nothing to find.
        let err = generate("a", &out, &no_search()).unwrap_err().to_string();
        assert!(err.contains("--sdk"), "{err}");
        assert!(!out.join("a").exists());
        // The binary's own checkout as a last resort.
        let g = generate(
            "b",
            &out,
            &SdkSearch {
                built_from: Some(repo.join("plugin-sdk/wit")),
                ..no_search()
            },
        )
        .unwrap();
        assert_eq!(g.sdk, repo.join("plugin-sdk"));
        // --sdk wins, and must be an SDK.
        let g = generate(
            "c",
            &out,
            &SdkSearch {
                explicit: Some(repo.join("plugin-sdk")),
                ..no_search()
            },
        )
        .unwrap();
        assert_eq!(g.sdk, repo.join("plugin-sdk"));
        let err = generate(
            "d",
            &out,
            &SdkSearch {
                explicit: Some(repo.clone()),
                ..no_search()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a Passerelle plugin-sdk folder"), "{err}");
    }

    #[test]
    fn names_are_checked_and_existing_crates_kept() {
        for bad in [
            "",
            "My-Lab",
            "1lab",
            "lab-",
            "a--b",
            "a_b",
            "a b",
            "test",
            "passerelle",
            "std",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["lab", "my-lab", "hl7v2-lab", "x1"] {
            check_name(good).unwrap();
        }
        assert_eq!(pascal_case("hl7v2-lab"), "Hl7v2Lab");
        let tmp = tempfile::tempdir().unwrap();
        let repo = checkout(tmp.path());
        std::fs::create_dir_all(repo.join("plugins/taken")).unwrap();
        std::fs::write(repo.join("plugins/taken/keep"), "x").unwrap();
        let err = generate("taken", &repo.join("plugins"), &no_search())
            .unwrap_err()
            .to_string();
        assert!(err.contains("already exists"), "{err}");
        assert!(repo.join("plugins/taken/keep").exists());
    }
}
