//! Finding and loading the OpenVINO C library at run time (the `openvino` crate's
//! `runtime-linking`): the binary builds without OpenVINO and says what to do when it is absent.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The library this process loaded, or why none could be.
static LOADED: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Loads `libopenvino_c` once per process; later calls return the first answer.
///
/// Looked for, in order: `OPENVINO_LIB` (the file, or a folder holding it); the project-local
/// install that `scripts/setup.sh` makes (`.local/venv`, found from the working directory and
/// from the executable upwards); the places the `openvino-finder` crate knows
/// (`OPENVINO_INSTALL_DIR`, `LD_LIBRARY_PATH`, `/opt/intel/openvino`); Python site-packages.
pub fn load() -> Result<&'static Path, String> {
    LOADED.get_or_init(load_uncached).as_deref().map_err(Clone::clone)
}

fn load_uncached() -> Result<PathBuf, String> {
    let (candidate, searched) = find();
    let Some(path) = candidate else {
        return Err(format!(
            "the OpenVINO runtime (libopenvino_c.so.*) was not found; searched: {}.\n\
             Fix: run ./scripts/setup.sh (installs the official openvino wheel into .local/venv), or \
             `pip install 'openvino>=2025.1'` and set OPENVINO_LIB to the libopenvino_c.so.<version> file \
             inside site-packages/openvino/libs",
            searched.join(", ")
        ));
    };
    // openvino-sys panics on a library without its symbols; look before loading.
    if let Err(problem) = exports_openvino(&path) {
        return Err(format!(
            "{}: {problem}.\nFix: set OPENVINO_LIB to the libopenvino_c.so.<version> file of an OpenVINO \
             2025.1+ install (./scripts/setup.sh puts one in .local/venv)",
            path.display()
        ));
    }
    openvino_sys::library::load_from(path.clone()).map_err(|error| {
        if error.contains("too old") {
            format!(
                "{}: {error}.\nFix: the openvino crate needs OpenVINO 2025.1 or newer: \
                 `pip install -U 'openvino>=2025.1'` (or ./scripts/setup.sh) and point OPENVINO_LIB at the new library",
                path.display()
            )
        } else {
            format!(
                "{}: cannot load the OpenVINO runtime: {error}.\nFix: set OPENVINO_LIB to a working \
                 libopenvino_c.so.<version> (./scripts/setup.sh installs one into .local/venv)",
                path.display()
            )
        }
    })?;
    tracing::debug!(library = %path.display(), "OpenVINO runtime loaded");
    Ok(path)
}

/// Opens the library on its own and checks that it exports the OpenVINO C API.
fn exports_openvino(path: &Path) -> Result<(), String> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let file = CString::new(path.as_os_str().as_bytes()).map_err(|_| "the path has a NUL byte".to_string())?;
    // SAFETY: dlopen/dlsym/dlclose with valid C strings; the handle is closed before returning.
    unsafe {
        let handle = libc::dlopen(file.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
        if handle.is_null() {
            let reason = libc::dlerror();
            let reason = if reason.is_null() {
                "unknown reason".to_string()
            } else {
                std::ffi::CStr::from_ptr(reason).to_string_lossy().into_owned()
            };
            return Err(format!("cannot open the library: {reason}"));
        }
        let missing = ["ov_get_openvino_version", "ov_core_create", "ov_core_read_model"]
            .into_iter()
            .find(|name| libc::dlsym(handle, CString::new(*name).unwrap().as_ptr()).is_null());
        libc::dlclose(handle);
        match missing {
            Some(name) => Err(format!("this is not the OpenVINO C library (it has no {name})")),
            None => Ok(()),
        }
    }
}

/// The first candidate library, and a description of every place looked at.
pub fn find() -> (Option<PathBuf>, Vec<String>) {
    let mut searched = Vec::new();
    if let Some(value) = std::env::var_os("OPENVINO_LIB") {
        let path = PathBuf::from(&value);
        if path.is_file() {
            return (Some(path), searched);
        }
        if let Some(found) = newest_in(&path) {
            return (Some(found), searched);
        }
        // An explicit setting that points nowhere is an error, not a reason to look elsewhere.
        searched.push(format!(
            "OPENVINO_LIB={} (neither a libopenvino_c.so.* file nor a folder holding one)",
            path.display()
        ));
        return (None, searched);
    }
    searched.push("OPENVINO_LIB (unset)".into());
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(dir) = std::env::current_dir() {
        roots.extend(dir.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    for root in roots {
        let venv = root.join(".local/venv");
        if venv.is_dir() {
            searched.push(format!("{}", venv.display()));
            if let Some(found) = in_site_packages(&venv.join("lib")) {
                return (Some(found), searched);
            }
        }
    }
    searched.push(".local/venv of the project (none found above the working directory)".into());
    if let Some(found) = openvino_sys::library::find().filter(|p| p.is_file()) {
        return (Some(found), searched);
    }
    searched.push("OPENVINO_INSTALL_DIR, INTEL_OPENVINO_DIR, LD_LIBRARY_PATH, /opt/intel/openvino".into());
    for lib in ["/usr/lib", "/usr/local/lib"] {
        if let Some(found) = in_site_packages(Path::new(lib)) {
            return (Some(found), searched);
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        if let Some(found) = in_site_packages(&Path::new(&home).join(".local/lib")) {
            return (Some(found), searched);
        }
    }
    searched.push("python3*/{site,dist}-packages/openvino/libs under /usr/lib, /usr/local/lib, ~/.local/lib".into());
    (None, searched)
}

/// `<lib>/python3*/{site,dist}-packages/openvino/libs/libopenvino_c.so.*`
fn in_site_packages(lib: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(lib).ok()?;
    let mut pythons: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("python3")))
        .collect();
    pythons.sort();
    pythons.iter().rev().find_map(|python| {
        ["site-packages", "dist-packages"]
            .iter()
            .find_map(|packages| newest_in(&python.join(packages).join("openvino/libs")))
    })
}

/// The highest-versioned `libopenvino_c.so*` file in a folder.
fn newest_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libopenvino_c.so")))
        .collect();
    found.sort();
    found.pop()
}
