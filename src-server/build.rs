//! Stages the web UI (`ui/dist`, built by `npm --prefix ui run build`) into `$OUT_DIR/ui` for
//! rust-embed. Without a build, it stages a page that says how to make one, so `cargo build` never
//! depends on Node.js.

use std::path::{Path, PathBuf};

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(std::io::Error::other)?);
    let dist = manifest.join("../ui/dist");
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(std::io::Error::other)?).join("ui");
    println!("cargo:rerun-if-changed={}", dist.display());
    println!("cargo:rerun-if-changed={}", dist.join("index.html").display());
    println!("cargo:rerun-if-changed={}", dist.join("assets").display());
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    if dist.join("index.html").is_file() {
        copy_dir(&dist, &out)?;
    } else {
        std::fs::create_dir_all(&out)?;
        let page = "<!doctype html><meta charset=utf-8><title>Lectern</title>\
            <p style=\"font:18px system-ui;margin:3em\">This build of Lectern has no web UI. Build it with \
            <code>npm --prefix ui ci &amp;&amp; npm --prefix ui run build</code>, then rebuild Lectern \
            (<code>bash .ci/setup</code> does both).</p>";
        std::fs::write(out.join("index.html"), page)?;
        std::fs::write(out.join("teacher.html"), page)?;
    }
    Ok(())
}
