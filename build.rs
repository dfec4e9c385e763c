//! Lists the message catalogues (`templates/locales/{tag}.ftl`) for
//! `src/i18n.rs`, so a new language is one new file: nothing in the code
//! names the languages.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // The checkout being built, read when the script runs: a script binary
    // reused from another checkout of the same target directory must not
    // read that checkout's catalogues.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("templates/locales");
    println!("cargo::rerun-if-changed={}", dir.display());
    // `sqlx::migrate!` (src/db/schema.rs) embeds the migrations when the
    // crate compiles: a new migration file alone must rebuild it.
    println!("cargo::rerun-if-changed={manifest_dir}/migrations");
    let mut tags: Vec<String> = std::fs::read_dir(&dir)
        .expect("templates/locales is readable")
        .map(|entry| entry.expect("a catalogue's directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "ftl"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    // English is the source catalogue: first, and the last resort.
    tags.sort_by_key(|tag| (tag != "en", tag.clone()));
    assert_eq!(
        tags.first().map(String::as_str),
        Some("en"),
        "templates/locales/en.ftl is the source catalogue"
    );
    let mut out =
        String::from("/// `(tag, catalogue)`, English first.\npub(crate) const CATALOGUES: &[(&str, &str)] = &[\n");
    for tag in &tags {
        assert!(
            tag.len() <= 8 && tag.chars().all(|c| c.is_ascii_lowercase()),
            "catalogue file names are lowercase primary language tags (ru.ftl), not {tag}.ftl"
        );
        let path = dir.join(format!("{tag}.ftl"));
        writeln!(out, "    ({tag:?}, include_str!({:?})),", path.display().to_string()).unwrap();
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").unwrap()).join("catalogues.rs");
    std::fs::write(target, out).expect("OUT_DIR is writable");
}
