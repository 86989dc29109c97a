//! Feeds arbitrary text to the scenario parser and grid expansion: an error with line and
//! column, or cells; never a panic, never an unbounded grid.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = std::path::Path::new("fuzz.yaml");
    if let Err(error) = reflex_scenario::scenario::parse(path, text) {
        let _ = error.to_string();
    }
});
