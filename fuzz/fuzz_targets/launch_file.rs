//! Feeds arbitrary text to the launch-file loader: substitution, YAML, the typed structs and the
//! include rules. It must return a diagnostic or a file, never panic, and a diagnostic must render.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reflex_launch_file::file;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The loader reads files: the input is written to a private scratch file first.
    thread_local! {
        static SCRATCH: std::path::PathBuf = {
            let dir = std::env::temp_dir().join(format!("reflex-fuzz-launch-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            dir.join("launch.yaml")
        };
    }
    SCRATCH.with(|path| {
        std::fs::write(path, text).unwrap();
        // Overrides taken from the input too: `--set` values reach the substitution.
        let mut overrides = BTreeMap::new();
        if let Some(line) = text.lines().find_map(|l| l.strip_prefix("#set ")) {
            if let Some((name, value)) = line.split_once('=') {
                overrides.insert(name.to_string(), value.to_string());
            }
        }
        if let Err(diagnostics) = file::load(path, &overrides) {
            let _ = diagnostics.render(&BTreeMap::new());
        }
    });
});
