//! The launch-file format of Reflex, apart from everything that runs a launch, so it can be
//! read, checked and fuzzed on its own:
//!
//! - [`file`]: typed structs (unknown keys refused), `${arg:NAME}` substitution that cannot add
//!   structure, `--set NAME=VALUE` overrides and bounded `include:` of other files;
//! - [`diagnostics`]: what is wrong and where (file, line, column, snippet, hint).
//!
//! `reflex check` (the `reflex-launch` crate) turns a loaded file into a plan.

pub mod diagnostics;
pub mod file;
