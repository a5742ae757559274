//! Links CPython into paddock-wsgi the way Debian links its own `python3` executable: the static,
//! position-dependent `libpython3.X.a` into an executable that is not position-independent,
//! rather than the shared `libpython3.X.so` that pyo3 links by default.
//!
//! Why: the shared library is compiled as position-independent code, and every call between its
//! own functions goes through the PLT. The interpreter loop pays for it on every opcode. Measured
//! here (docs/benchmarks.md, "libpython linked in"): the Flask example's page view costs 176–182 µs
//! run in a loop by a program linked with `libpython3.11.a` (as fast as Debian's `python3`), against
//! 191–193 µs through `libpython3.11.so`; the JSON view 73 against 77 µs. uWSGI's python3 plugin
//! loads the shared library.
//!
//! The price: the executable's own code is not placed at a random address (ASLR still applies to
//! the stack, the heap and every shared library); Debian's `/usr/bin/python3.11` makes the same
//! choice. `PADDOCK_WSGI_LIBPYTHON=shared` keeps pyo3's shared linking, and so does a Python
//! without its static library (a warning says so).
//!
//! pyo3's own link line (`-lpython3.X`) stays: the whole static archive comes first on the link
//! line, so every symbol is already defined when the linker reaches the shared library, and
//! `--as-needed` (rustc's default) leaves it out of the executable's needed libraries.
//! `--export-dynamic` gives the interpreter's symbols to the extension modules it loads
//! (`_json`, `_hashlib`, markupsafe's speedups…), which are not linked against libpython.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PADDOCK_WSGI_LIBPYTHON");
    println!("cargo:rerun-if-changed=build.rs");
    let choice = std::env::var("PADDOCK_WSGI_LIBPYTHON").unwrap_or_default();
    let linked = match choice.as_str() {
        "" | "static" => link_static(choice == "static"),
        "shared" => "shared",
        other => panic!("PADDOCK_WSGI_LIBPYTHON={other:?}: expected \"static\" or \"shared\""),
    };
    println!("cargo:rustc-env=PADDOCK_WSGI_LIBPYTHON_LINKED={linked}");
}

/// Links the static library if the interpreter has one; "static" or "shared", as it went.
/// `required`: the builder asked for static linking, so its absence is an error.
fn link_static(required: bool) -> &'static str {
    let config = pyo3_build_config::get();
    let found = config
        .executable
        .as_deref()
        .ok_or("pyo3 found no Python executable".to_string())
        .and_then(|python| StaticLibrary::of(Path::new(python)));
    let library = match found {
        Ok(library) => library,
        Err(reason) if required => panic!("PADDOCK_WSGI_LIBPYTHON=static: {reason}"),
        Err(reason) => {
            println!("cargo:warning=paddock-wsgi links the shared libpython: {reason}");
            return "shared";
        }
    };
    println!(
        "cargo:rustc-link-search=native={}",
        library.directory.display()
    );
    println!(
        "cargo:rustc-link-lib=static:+whole-archive={}",
        library.name
    );
    for system_library in &library.system_libraries {
        println!("cargo:rustc-link-lib=dylib={system_library}");
    }
    // libpython's objects are position-dependent: the executable must be too.
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic");
    "static"
}

/// The interpreter's static library, and the system libraries its built-in modules need.
struct StaticLibrary {
    directory: PathBuf,
    /// As `-l` takes it: `python3.11` for `libpython3.11.a`.
    name: String,
    system_libraries: Vec<String>,
}

impl StaticLibrary {
    fn of(python: &Path) -> Result<Self, String> {
        const QUERY: &str = "import sysconfig as s\n\
            for key in ('LIBPL', 'LIBRARY', 'LIBS', 'SYSLIBS', 'MODLIBS'):\n\
            \x20   print(s.get_config_var(key) or '')";
        let output = Command::new(python)
            .args(["-c", QUERY])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
        if !output.status.success() {
            return Err(format!("{} failed to report its build", python.display()));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let mut lines = text.lines();
        let (directory, archive) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
        let directory = PathBuf::from(directory);
        let name = archive
            .strip_prefix("lib")
            .and_then(|rest| rest.strip_suffix(".a"))
            .ok_or(format!("{} names no static library", python.display()))?
            .to_string();
        let path = directory.join(archive);
        if !path.is_file() {
            return Err(format!(
                "{} is missing (Debian: libpython3-dev)",
                path.display()
            ));
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let mut system_libraries: Vec<String> = Vec::new();
        for flag in lines.flat_map(str::split_whitespace) {
            if let Some(library) = flag.strip_prefix("-l") {
                if !system_libraries.iter().any(|known| known == library) {
                    system_libraries.push(library.to_string());
                }
            }
        }
        Ok(Self {
            directory,
            name,
            system_libraries,
        })
    }
}
