//! `cargo xtask setup`: idempotent installation of what strata's build and tests need.
//!
//! - the nightly toolchain's rust-src (aya-ebpf programs are built with -Z build-std=core);
//! - bpf-linker, built against the nightly toolchain's own LLVM (there is no system LLVM 22);
//! - the Debian packages the tests use (dig, ffmpeg, Chromium among them);
//! - hls.js, pinned, into target/npm for the browser tests.
//!
//! Every step checks first and skips what is already there.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _};

use crate::shell::{exec, output};

/// Debian packages the tests and the POP use.
pub const DEBIAN_PACKAGES: &[&str] = &[
    "curl",
    // The HTTPS tests check the presented certificate and hold TLS sessions with s_client.
    "openssl",
    "iproute2",
    "procps",
    "strace",
    "fonts-dejavu-core",
    "bind9-dnsutils",
    "ffmpeg",
    "chromium",
    // etcd-client's build script compiles etcd's protobufs; the registry tests run a real etcd.
    "protobuf-compiler",
    "etcd-server",
    // h2load drives the bench's small-object rows (its quick run is part of the tests).
    "nghttp2-client",
];

/// The hls.js release the browser tests play with, installed into target/npm (never committed).
pub const HLS_JS: &str = "hls.js@1.6.19";

/// Runs every setup step, saying what it does.
pub fn run_all(verbose: bool) -> anyhow::Result<()> {
    nightly(verbose)?;
    rust_src(verbose)?;
    bpf_linker(verbose)?;
    debian_packages(verbose)?;
    npm_packages(verbose)?;
    Ok(())
}

/// `cargo xtask setup`.
pub fn run() -> anyhow::Result<()> {
    run_all(true)?;
    println!("setup: everything is in place");
    Ok(())
}

/// Runs the setup steps that are missing; silent when nothing is.
pub fn ensure() -> anyhow::Result<()> {
    run_all(false)
}

fn nightly(verbose: bool) -> anyhow::Result<()> {
    let list =
        output(Command::new("rustup").args(["toolchain", "list"])).context("rustup is not installed")?;
    if list.lines().any(|l| l.starts_with("nightly")) {
        if verbose {
            println!("setup: nightly toolchain present");
        }
        return Ok(());
    }
    println!("setup: installing the nightly toolchain");
    exec(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))
}

fn rust_src(verbose: bool) -> anyhow::Result<()> {
    let installed =
        output(Command::new("rustup").args(["component", "list", "--toolchain", "nightly", "--installed"]))
            .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        if verbose {
            println!("setup: nightly rust-src present");
        }
        return Ok(());
    }
    println!("setup: adding rust-src to the nightly toolchain");
    exec(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

fn cargo_bin(name: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    home.join("bin").join(name)
}

fn bpf_linker(verbose: bool) -> anyhow::Result<()> {
    let on_path = output(Command::new("bpf-linker").arg("--version"));
    let in_cargo = output(Command::new(cargo_bin("bpf-linker")).arg("--version"));
    if let Some(v) = on_path.or(in_cargo) {
        if verbose {
            println!("setup: {} present", v.trim());
        }
        return Ok(());
    }
    let sysroot = output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))
        .context("cannot ask the nightly rustc for its sysroot")?;
    let lib = PathBuf::from(sysroot.trim()).join("lib");
    let llvm = std::fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .find_map(|n| {
            n.strip_prefix("lib")
                .and_then(|n| n.strip_suffix(".so"))
                .filter(|n| n.starts_with("LLVM-"))
                .map(String::from)
        })
        .with_context(|| format!("no libLLVM-*.so in {}; cannot build bpf-linker", lib.display()))?;
    let major = llvm
        .trim_start_matches("LLVM-")
        .split(['-', '.'])
        .next()
        .unwrap_or("22")
        .to_string();
    println!("setup: building bpf-linker against the nightly toolchain's {llvm} (about a minute)");
    let rustflags = format!(
        "-L {lib} -l dylib={llvm} -C link-arg=-Wl,-rpath,{lib}",
        lib = lib.display()
    );
    let mut cmd = Command::new("cargo");
    cmd.args([
        "+nightly",
        "install",
        "bpf-linker",
        "--no-default-features",
        "--features",
    ])
    .arg(format!("llvm-{major},no-llvm-linking"))
    .env("RUSTFLAGS", rustflags);
    exec(&mut cmd)?;
    if output(Command::new(cargo_bin("bpf-linker")).arg("--version")).is_none() {
        bail!("bpf-linker was built but does not run; see the cargo output above");
    }
    Ok(())
}

/// hls.js for the browser tests, in target/npm of the build tree.
fn npm_packages(verbose: bool) -> anyhow::Result<()> {
    let prefix = crate::shell::root().join("target/npm");
    let dist = prefix.join("node_modules/hls.js/dist/hls.min.js");
    if dist.exists() {
        if verbose {
            println!("setup: {HLS_JS} present in {}", prefix.display());
        }
        return Ok(());
    }
    if output(Command::new("npm").arg("--version")).is_none() {
        // Debian's npm conflicts with the Node.js builds that carry their own npm: install it
        // only where there is none.
        install_debian_packages(&["nodejs", "npm"], verbose)?;
    }
    println!(
        "setup: installing {HLS_JS} into {} (for the browser tests)",
        prefix.display()
    );
    std::fs::create_dir_all(&prefix).with_context(|| format!("creating {}", prefix.display()))?;
    exec(
        Command::new("npm")
            .args(["install", "--no-save", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(HLS_JS),
    )?;
    if !dist.exists() {
        bail!("npm installed {HLS_JS} but {} is missing", dist.display());
    }
    Ok(())
}

fn debian_packages(verbose: bool) -> anyhow::Result<()> {
    install_debian_packages(DEBIAN_PACKAGES, verbose)
}

/// Installs whichever of `packages` are missing (apt-get, as root); silent when none is.
pub fn install_debian_packages(packages: &[&str], verbose: bool) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            let status =
                output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p])).unwrap_or_default();
            !status.contains("install ok installed")
        })
        .collect();
    if missing.is_empty() {
        if verbose {
            println!("setup: Debian packages present: {}", packages.join(" "));
        }
        return Ok(());
    }
    if output(Command::new("id").arg("-u"))
        .map(|u| u.trim() != "0")
        .unwrap_or(true)
    {
        bail!(
            "Debian packages missing: {}; run as root: apt-get install -y {}",
            missing.join(" "),
            missing.join(" ")
        );
    }
    println!("setup: installing Debian packages: {}", missing.join(" "));
    exec(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    exec(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}
